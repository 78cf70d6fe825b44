"""tdlib.batching: the one place that orders texts by length for every batched model call."""
import pytest

from tdlib.batching import by_length, map_by_length


def test_longest_first_keeps_ties_in_input_order_and_covers_every_index():
    lengths = [2, 7, 7, 1, 2, 7]
    batches = list(by_length(lengths, 2))
    assert batches == [[1, 2], [5, 0], [4, 3]]
    assert list(by_length(lengths, 4, longest_first=False)) == [[3, 0, 4, 1], [2, 5]]
    assert list(by_length([], 3)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(by_length(lengths, 0))


def test_results_come_back_in_input_order_and_batches_see_similar_lengths():
    texts = ["a b c", "a", "a b c d e", "a b"]
    seen = []

    def run(idx):
        seen.append([len(texts[i].split()) for i in idx])
        return [texts[i].upper() for i in idx]

    assert map_by_length([len(t.split()) for t in texts], 2, run) == [t.upper() for t in texts]
    assert seen == [[5, 3], [2, 1]]  # each batch padded only to its own longest
    with pytest.raises(ValueError, match="gave 1 results"):
        map_by_length([1, 2], 2, lambda idx: ["only one"])

"""The recorded reference results are complete, consistent with their manifest, and read by the chapters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdlib import reference

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def test_every_reference_file_is_there():
    assert reference.available(), f"missing under {reference.REFERENCE_DIR}: " + ", ".join(
        f for f in reference.FILES if not (reference.REFERENCE_DIR / f).is_file())


def test_manifest_says_how_the_results_were_made():
    m = reference.manifest()
    for key in ("command", "commit", "date", "machine", "roles", "seeds", "experiments", "seconds", "config"):
        assert m.get(key), key
    assert len(m["commit"]) == 40 and len(m["seeds"]) >= 2
    assert m["profile"] != "smoke" and "student" in m["roles"] and "teacher" in m["roles"]
    assert "Reference run with real models" in reference.caption()


def test_metrics_cover_the_manifest_and_lie_in_0_1():
    m = reference.manifest()
    metrics = reference.metrics().set_index("run")
    # the untrained student and both methods with every seed at least
    needed = {"baseline"} | {f"{k}-s{s}" for k in ("td", "tt") for s in m["seeds"]}
    assert needed <= set(metrics.index)
    assert set(metrics.index) - {"baseline"} <= set(m["experiments"])
    values = metrics[["nDCG@20", "AP", "R@100", "R@1000"]]
    assert ((values >= 0) & (values <= 1)).all().all()
    per_query = reference.per_query()
    assert set(per_query["run"]) == set(metrics.index)
    topics = per_query.groupby("run")["query_id"].nunique()
    assert topics.nunique() == 1  # every run evaluated on the same judged topics
    # the per-query values average to the recorded means
    means = per_query.groupby("run")["nDCG@20"].mean()
    assert (means - metrics["nDCG@20"]).abs().max() < 1e-3


def test_comparisons_and_logs_and_entropies_are_consistent():
    metrics = reference.metrics().set_index("run")
    comps = reference.comparisons()
    assert {"td-s1", "tt-s1"} <= set(comps["b"]) | set(comps["a"])
    assert ((comps["p"] >= 0) & (comps["p"] <= 1)).all()
    for _, row in comps[comps["measure"] == "nDCG@20"].iterrows():
        assert row["b_mean"] == pytest.approx(metrics.loc[row["b"], "nDCG@20"], abs=1e-3)
    logs = reference.train_logs()
    assert all(len(v) >= 2 and all(e["loss"] >= 0 for e in v) for v in logs.values())
    assert set(logs) == set(metrics.index) - {"baseline"}
    cost = reference.training_cost()
    assert set(cost.index) == set(logs)
    assert (cost["steps"] > 0).all() and (cost["seconds"] > 0).all() and (cost["peak_rss_mib"] > 0).all()
    # a run with frozen word embeddings trains fewer parameters than the full runs
    full = cost.loc[[r for r in cost.index if r != "td-frozen"], "trainable_parameters"]
    assert full.nunique() == 1
    if "td-frozen" in cost.index:
        assert cost.loc["td-frozen", "trainable_parameters"] < full.iloc[0]
    ent = reference.entropies()
    assert "before training" in ent
    for sides in ent.values():
        assert all(0 <= x <= 1 + 1e-6 for values in sides.values() for x in values)
    assert len(reference.teacher_scores()) > 0


@pytest.mark.parametrize("chapter", ["03", "04", "05", "06", "08"])
def test_chapters_render_the_reference_results(chapter):
    path = next(NOTEBOOKS.glob(f"{chapter}_*.ipynb"))
    code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert ".show(" in code and ("reference." in code or "recorded." in code)


def test_the_main_comparison_pools_every_seed():
    m = reference.manifest()
    n = reference.td_against_tt("nDCG@20")
    assert n["seeds"] == len(m["seeds"]) and len(n["seed_pairs"]) == n["seeds"]
    metrics = reference.metrics().set_index("run")
    td = [f"td-s{s}" for s in m["seeds"]]
    assert n["td_mean"] == pytest.approx(metrics.loc[td, "nDCG@20"].mean(), abs=1e-3)
    assert 0 <= n["p"] <= 1 and n["td_better"] + n["tt_better"] <= n["topics"]


def test_a_live_run_is_compared_with_the_reference_only_as_far_as_its_recipe_matches():
    from tdlib.config import load_config

    m = reference.manifest()
    same = load_config(m["profile"], overrides=[*m["overrides"], f"lang={m['lang']}", "seed=42",
                                                "train.method=translate-train", "search.batch_size=3"])
    assert reference.differences(same) == []  # seed, method and batch sizes are not the recipe
    shorter = load_config(m["profile"], overrides=[*m["overrides"], f"lang={m['lang']}", "train.max_steps=10"])
    assert reference.differences(shorter) == ["train.max_steps: 10 here, 100 in the reference"]
    assert any(d.startswith("student.model:") for d in reference.differences(load_config("smoke")))

    recorded = reference.metrics().set_index("run")
    td = recorded.loc[["td-s1", "td-s2"], "nDCG@20"]
    table = reference.beside({"TD here": {"nDCG@20": 0.9, "MAP": 0.5}}, {"TD here": ["td-s1", "td-s2"]},
                             ["nDCG@20", "MAP"])
    row = table.loc["TD here"]
    assert row["reference runs"] == "td-s1, td-s2"
    assert row["nDCG@20 reference"] == round(float(td.mean()), 4)
    assert row["nDCG@20 reference range"] == f"{td.min():.4f}-{td.max():.4f}"
    assert row["nDCG@20 here - reference"] == round(0.9 - float(td.mean()), 4)
    assert row["MAP reference"] == round(float(recorded.loc[["td-s1", "td-s2"], "AP"].mean()), 4)
    with pytest.raises(Exception, match="has none of the runs"):
        reference.beside({"x": {"nDCG@20": 0.5}}, {"x": ["td-s9"]}, ["nDCG@20"])


def test_chapter_8_runs_are_complete_and_kept_apart_from_the_other_chapters():
    assert reference.quality_recorded()
    m = reference.manifest()
    q = reference.translation_quality()
    assert q.index.str.startswith(reference.QUALITY_PREFIX).all()
    assert not reference.metrics()["run"].str.startswith(reference.QUALITY_PREFIX).any()
    assert not any(r.startswith(reference.QUALITY_PREFIX) for r in reference.train_logs())
    # every recorded seed has both methods on the human translations, and every damaged run its chrF
    for s in sorted(set(q["seed"])):
        assert {f"tq-td-human-s{s}", f"tq-tt-human-s{s}"} <= set(q.index)
    assert q["chrF"].notna().all() and (q.loc[q["version"] == "human", "chrF"] == 100).all()
    assert ((q["chrF"] >= 0) & (q["chrF"] <= 100)).all()
    # within a kind and seed, more damage means a lower chrF
    for _, part in q[q["version"] != "human"].groupby(["kind", "seed"]):
        assert part.sort_values("rate")["chrF"].is_monotonic_decreasing
    assert q.dropna(subset=["p (paired t)"]).shape[0] == (q["version"] != "human").sum()
    cost = reference.training_cost(quality=True)
    assert set(cost.index) == set(q.index) and (cost["steps"] == 40).all()
    assert (cost["trainable_parameters"] < reference.training_cost().loc["td-s1", "trainable_parameters"]).all()
    for run in q.index:
        e = m["experiments"][run]
        assert "train.max_steps=40" in e["overrides"] and e["seed"] == q.loc[run, "seed"]
        assert ("degrade" in e) == (q.loc[run, "version"] not in ("human", "english"))
        assert ("data.train_translated=tdlib-mini/en/train" in e["overrides"]) == (q.loc[run, "version"] == "english")


def test_translation_quality_reads_names_chrf_and_tests(tmp_path):
    import pandas as pd

    for f in reference.FILES:
        (tmp_path / f).write_bytes((reference.REFERENCE_DIR / f).read_bytes())
    runs = {"tq-td-human-s1": 0.80, "tq-td-drop-0.3-s1": 0.75, "tq-tt-replace-0.6-s2": 0.5}
    metrics = reference.metrics(directory=tmp_path)  # without the recorded chapter 8 runs
    extra = pd.DataFrame([{"run": r, "label": r, "seed": int(r[-1]), "nDCG@20": v, "AP": v - 0.1} for r, v in runs.items()])
    pd.concat([metrics, extra]).to_csv(tmp_path / "metrics.csv", index=False)
    per_query = reference.per_query(directory=tmp_path)
    rows = [{"run": r, "query_id": q, "nDCG@20": v + (0.1 if i % 2 else -0.1)} for r, v in runs.items()
            for i, q in enumerate(["1", "2", "3", "4"])]
    pd.concat([per_query, pd.DataFrame(rows)]).to_csv(tmp_path / "per_query.csv", index=False)
    (tmp_path / "translation_quality.json").write_text(json.dumps({
        "human": {"chrF": 100.0}, "drop-0.3-s1": {"kind": "drop", "rate": 0.3, "seed": 1, "chrF": 40.0},
        "replace-0.6-s2": {"kind": "replace", "rate": 0.6, "seed": 2, "chrF": 12.5}}))
    q = reference.translation_quality(directory=tmp_path)
    assert list(q.index) == list(runs)
    drop = q.loc["tq-td-drop-0.3-s1"]
    assert (drop["method"], drop["version"], drop["kind"], drop["rate"], drop["seed"], drop["chrF"]) == \
        ("Translate-Distill", "drop-0.3", "drop", 0.3, 1, 40.0)
    assert drop["delta nDCG@20 vs human"] == pytest.approx(-0.05) and drop["p (paired t)"] == 1.0  # a constant shift
    assert q.loc["tq-tt-replace-0.6-s2", "chrF"] == 12.5
    assert pd.isna(q.loc["tq-tt-replace-0.6-s2", "p (paired t)"])  # no human run of that method and seed
    assert "tq-td-human-s1" not in set(reference.metrics(directory=tmp_path)["run"])

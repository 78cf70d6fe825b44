"""The book's reference results: one recorded run of chapters 3-6 with real models, read by the chapters.

``scripts/record_reference.py`` writes them (small JSON, CSV and gzipped JSONL files, no weights) into
``tdlib/data/reference/`` with a ``manifest.json`` saying how they were made; they ship with the
package, so a chapter shows what the method does with real models even when it runs in ``smoke`` or in
Colab. Every table or figure a chapter draws from here carries :func:`caption`.

What this leaves out: recording itself (the script does that) and any result of the ``paper`` profile.
"""
from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from tdlib.errors import DataError
from tdlib.notes import note

REFERENCE_DIR = Path(__file__).parent / "data" / "reference"
# Chapter 8's runs (students trained on damaged translations) are named tq-METHOD-VERSION-sSEED.
QUALITY_PREFIX = "tq-"
FILES = ("manifest.json", "teacher_scores.jsonl.gz", "entropies.json", "train_logs.json", "metrics.csv",
         "per_query.csv", "comparisons.csv", "training_cost.json")


def available(directory: Path = REFERENCE_DIR) -> bool:
    """True when every reference file is there."""
    return all((directory / f).is_file() for f in FILES)


def _path(name: str, directory: Path = REFERENCE_DIR) -> Path:
    p = directory / name
    if not p.is_file():
        raise DataError(f"the reference result {p} is missing; run scripts/record_reference.py with the real "
                        "models to record it.")
    return p


@lru_cache(maxsize=None)
def manifest(directory: Path = REFERENCE_DIR) -> dict[str, Any]:
    return json.loads(_path("manifest.json", directory).read_text(encoding="utf-8"))


def caption(directory: Path = REFERENCE_DIR) -> str:
    """"Reference run with real models, recorded on ... with ...": the label of every reference result."""
    m = manifest(directory)
    roles = "; ".join(f"{k}: {v}" for k, v in m["roles"].items())
    return (f"Reference run with real models, recorded on {m['date']} on {m['machine']} "
            f"(commit {m['commit'][:8]}, `{m['profile']}` profile, {m['lang']}, seeds "
            f"{', '.join(map(str, m['seeds']))}). {roles}.")


def show(what: str, directory: Path = REFERENCE_DIR) -> None:
    """A highlighted note in a notebook: what follows is the reference run, not this page's live run."""
    note(f"**{what}** {caption(directory)}")


def entropies(directory: Path = REFERENCE_DIR) -> dict[str, dict[str, list[float]]]:
    """{"before training" | "after ...": {"teacher@T" | "student@T": [entropy / log n per group]}}."""
    return json.loads(_path("entropies.json", directory).read_text(encoding="utf-8"))


def train_logs(directory: Path = REFERENCE_DIR, quality: bool = False) -> dict[str, list[dict[str, float]]]:
    """{run: [{"step", "loss"}, ...]} for every training run (``quality``: chapter 8's instead, see :func:`metrics`)."""
    logs = json.loads(_path("train_logs.json", directory).read_text(encoding="utf-8"))
    return {k: v for k, v in logs.items() if k.startswith(QUALITY_PREFIX) == quality}


def training_cost(directory: Path = REFERENCE_DIR, quality: bool = False):
    """One row per training run: steps, seconds, queries per second, trainable parameters, peak memory (MiB)."""
    import pandas as pd

    table = json.loads(_path("training_cost.json", directory).read_text(encoding="utf-8"))
    return _part(pd.DataFrame.from_dict(table, orient="index").rename_axis("run"), quality, index=True)


def teacher_scores(directory: Path = REFERENCE_DIR) -> dict[str, dict[str, float]]:
    """{query id: {passage id: the teacher's score}} for every training candidate."""
    with gzip.open(_path("teacher_scores.jsonl.gz", directory), "rt", encoding="utf-8") as f:
        return {qid: dict(pairs) for qid, pairs in (json.loads(line) for line in f)}


def _part(table, quality: bool, index: bool = False):
    """Chapters 3-7's runs, or with ``quality`` chapter 8's (named ``tq-...``)."""
    names = table.index.to_series() if index else table["run"]
    return table[names.astype(str).str.startswith(QUALITY_PREFIX) == quality]


def metrics(directory: Path = REFERENCE_DIR, quality: bool = False):
    """One row per run: run, label, seed and the measures (a pandas DataFrame).

    Chapter 8's shorter runs on damaged translations (``tq-...``) are left out, unless ``quality``,
    which gives only them (:func:`translation_quality` joins them with their translations' chrF).
    """
    import pandas as pd

    return _part(pd.read_csv(_path("metrics.csv", directory)), quality)


def per_query(directory: Path = REFERENCE_DIR, quality: bool = False):
    """One row per (run, query): the measures of every judged test query (``quality``: see :func:`metrics`)."""
    import pandas as pd

    return _part(pd.read_csv(_path("per_query.csv", directory), dtype={"query_id": str}), quality)


def comparisons(directory: Path = REFERENCE_DIR):
    """Paired t-tests: is run ``b`` better than run ``a`` on ``measure``; delta, t, p, wins."""
    import pandas as pd

    return pd.read_csv(_path("comparisons.csv", directory))


def quality_recorded(directory: Path = REFERENCE_DIR) -> bool:
    """True when chapter 8's runs are in the reference (some of them at least)."""
    return (directory / "translation_quality.json").is_file() and available(directory) \
        and not metrics(directory, quality=True).empty


def translation_quality(measure: str = "nDCG@20", directory: Path = REFERENCE_DIR):
    """Chapter 8's runs, one row each: method, version, kind, rate, seed, chrF of the training passages,
    the measures, and the paired test against the same method and seed on the human translations.

    A run ``tq-td-drop-0.3-s1`` is Translate-Distill trained on the passages with 30% of their words
    dropped (seed 1); ``tq-tt-human-s2`` Translate-Train on the human translations (seed 2);
    ``tq-td-english-s1`` Translate-Distill on the untranslated English passages (kind ``untranslated``).
    """
    import pandas as pd
    from scipy import stats

    chrf = json.loads(_path("translation_quality.json", directory).read_text(encoding="utf-8"))
    table = metrics(directory, quality=True)
    wide = per_query(directory, quality=True).pivot(index="query_id", columns="run", values=measure)
    rows = []
    for _, r in table.iterrows():
        method, rest = r["run"][len(QUALITY_PREFIX):].split("-", 1)
        version, seed = rest.rsplit("-s", 1)
        if version == "human":
            kind, rate, quality = "none", 0.0, chrf.get(version, {})
        elif version == "english":  # no translation: the student read the English passages
            kind, rate, quality = "untranslated", float("nan"), chrf.get(version, {})
        else:
            kind, rate = version.rsplit("-", 1)[0], float(version.rsplit("-", 1)[1])
            quality = chrf.get(f"{version}-s{seed}", {})
        human = f"{QUALITY_PREFIX}{method}-human-s{seed}"
        row = {"run": r["run"], "method": {"td": "Translate-Distill", "tt": "Translate-Train"}.get(method, method),
               "version": version, "kind": kind, "rate": rate, "seed": int(seed),
               "chrF": quality.get("chrF", float("nan")), measure: r[measure], "MAP": r["AP"]}
        if version != "human" and human in wide:
            diff = wide[r["run"]] - wide[human]
            p = stats.ttest_rel(wide[r["run"]], wide[human]).pvalue if float(diff.std()) > 0 else 1.0
            row.update({f"delta {measure} vs human": round(float(diff.mean()), 4), "p (paired t)": round(float(p), 4)})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def td_against_tt(measure: str = "nDCG@20", directory: Path = REFERENCE_DIR) -> dict[str, Any]:
    """The main comparison over every recorded seed: each method's mean and spread, and a paired test.

    The paired t-test compares, topic by topic, the mean over seeds of Translate-Distill with that of
    Translate-Train; ``seed_pairs`` lists the per-seed differences of the means.
    """
    from scipy import stats

    table = per_query(directory)
    runs = sorted(set(table["run"]))
    td = [r for r in runs if r.startswith("td-s")]
    tt = [r for r in runs if r.startswith("tt-s")]
    wide = table.pivot(index="query_id", columns="run", values=measure)
    a, b = wide[tt].mean(axis=1), wide[td].mean(axis=1)
    t, p = stats.ttest_rel(b, a) if float((b - a).std()) > 0 else (0.0, 1.0)
    means = wide.mean()
    return {
        "measure": measure, "topics": int(len(wide)), "seeds": len(td),
        "td_mean": round(float(means[td].mean()), 4), "td_std": round(float(means[td].std(ddof=1)), 4) if len(td) > 1 else 0.0,
        "tt_mean": round(float(means[tt].mean()), 4), "tt_std": round(float(means[tt].std(ddof=1)), 4) if len(tt) > 1 else 0.0,
        "baseline": round(float(means["baseline"]), 4) if "baseline" in means else None,
        "delta": round(float((b - a).mean()), 4), "t": round(float(t), 3), "p": round(float(p), 4),
        "td_better": int((b > a).sum()), "tt_better": int((b < a).sum()),
        "seed_pairs": [round(float(means[x] - means[y]), 4) for x, y in zip(td, tt)],
    }


# Settings that do not change what a run computes, or that a chapter varies on purpose (the method, the
# seed): a live run that differs from the reference only in these is the reference's recipe.
_NOT_RECIPE = ("seed", "train.method", "train.save_steps", "train.logging_steps", "translate.",
               "evaluate.measures", "profile", "data.lookup")


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(cfg, directory: Path = REFERENCE_DIR) -> list[str]:
    """How a live run with ``cfg`` differs from the reference run's recipe, one line per setting.

    Empty when the live run is the reference recipe (seed and method aside): its numbers can then be
    read against the reference's seeds. Batch sizes of scoring, encoding and search are ignored (they
    change speed, not results), as are the translation settings (the reference used no translator)
    and settings added since the reference was recorded that are left at their defaults.
    """
    live, recorded = _flat(cfg.to_dict()), _flat(manifest(directory)["config"])
    defaults = _flat(type(cfg)().to_dict())
    out = []
    for key in sorted(set(live) | set(recorded)):
        if key.startswith(_NOT_RECIPE) or key.endswith(".batch_size"):
            continue
        # a setting added after the reference was recorded: the reference ran as its default does
        then = recorded[key] if key in recorded else defaults.get(key)
        if live.get(key) != then:
            out.append(f"{key}: {live.get(key)!r} here, {then!r} in the reference")
    return out


def beside(live: dict[str, dict[str, float]], runs: dict[str, list[str]], measures: list[str],
           directory: Path = REFERENCE_DIR):
    """This page's live numbers next to the reference runs they correspond to, one row per live run.

    ``live`` maps a name to its measures; ``runs`` maps the same name to the reference runs of that
    recipe (for example ``["td-s1", "td-s2"]``). Each measure gets the live value, the reference's
    mean over those runs, their range (min-max: the seed spread) and the live value minus the mean.
    ``MAP`` reads the reference's ``AP`` column.
    """
    import pandas as pd

    table = metrics(directory).set_index("run")
    rows = []
    for name, values in live.items():
        recorded = table.loc[[r for r in runs[name] if r in table.index]]
        if recorded.empty:
            raise DataError(f"the reference has none of the runs {runs[name]} for {name!r}; "
                            f"it has {', '.join(table.index)}.")
        row: dict[str, Any] = {"run": name, "reference runs": ", ".join(recorded.index)}
        for m in measures:
            column = recorded["AP" if m == "MAP" else m]
            row[f"{m} here"] = round(float(values[m]), 4)
            row[f"{m} reference"] = round(float(column.mean()), 4)
            row[f"{m} reference range"] = f"{column.min():.4f}-{column.max():.4f}"
            row[f"{m} here - reference"] = round(float(values[m]) - float(column.mean()), 4)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")

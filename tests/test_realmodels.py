"""The real-model path, offline: multilingual-e5-small learns from a MiniLM teacher (opt-in).

Run with ``python -m pytest -m realmodels`` after ``../shared/offline-models/populate``; takes several
minutes on 2 cores. Skipped when the models are not in the Hugging Face cache.
"""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.realmodels

MODELS = ("intfloat/multilingual-e5-small", "sentence-transformers/all-MiniLM-L6-v2")


def _cached(model_id):
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


@pytest.mark.skipif(not all(_cached(m) for m in MODELS), reason="real models not in the Hugging Face cache")
def test_distillation_from_an_english_teacher_helps_the_cross_language_student(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tdlib", "pipeline", "--profile", "cpu", "--out", str(tmp_path), "--quiet",
         "--set", "teacher.kind=bi-encoder", "--set", f"teacher.model={MODELS[1]}", "--set", "teacher.setting=eng-eng",
         "--set", "train.max_steps=78", "--set", "train.save_steps=1000"],
        capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    before, after = summary["baseline"]["nDCG@20"], summary["student"]["nDCG@20"]
    # Measured once: 0.760 -> 0.839 nDCG@20 (zh). Require a clear gain, not that exact number.
    assert after > before + 0.02, summary

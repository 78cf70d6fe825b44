"""The smoke models are the same on every machine: built in code, from a fixed seed."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_build_the_same_tokenizer(tmp_path):
    # The WordPiece trainer orders equally frequent pieces by hash-map order, which differs between
    # processes; tdlib.smoke renumbers them. Two fresh processes must write the same vocabulary.
    vocabularies = []
    for k in range(2):
        cache = tmp_path / f"cache{k}"
        code = "from tdlib import smoke; print(smoke.build('encoder'))"
        folder = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                                env={**os.environ, "TDLIB_CACHE": str(cache)}).stdout.strip().splitlines()[-1]
        vocabularies.append(json.loads((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
    assert vocabularies[0] == vocabularies[1]
    assert list(vocabularies[0])[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

#!/usr/bin/env bash
# Set up a fresh machine and build the book into _build/html.
# The profile the chapters run in: $TDLIB_PROFILE if set, else `cpu` when its models can be had,
# else `smoke` (each executed page says which, and why).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import torch" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check torch==2.13.0
fi
python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt
python3 -m pip install --quiet --disable-pip-version-check --no-deps -e .
python3 -m ipykernel install --user --name python3 >/dev/null
bash scripts/fetch-mathjax.sh
eval "$(python3 -m tdlib.bookprofile --shell)"
echo "building the book with profile: $TDLIB_PROFILE"
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1  # no progress bars in the rendered pages
jupyter-book build -W --keep-going .
echo "open _build/html/index.html"

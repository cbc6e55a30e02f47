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
stamp=".venv/.installed-$want"
digest="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "Installing $req into .venv (the first time compiles llama.cpp: about 10 minutes) ..."
  .venv/bin/python -m pip install --quiet -r "$req"
  echo "$digest" > "$stamp"
fi

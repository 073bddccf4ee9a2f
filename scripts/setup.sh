#!/usr/bin/env bash
# Create .venv and install splitnas with the agent and dev extras; re-runs only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "splitnas: creating virtual environment in .venv" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.splitnas-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "splitnas: installing dependencies (torch 2.14.1 takes about a minute)" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[agent,dev]"
    echo "$want" > "$stamp"
fi

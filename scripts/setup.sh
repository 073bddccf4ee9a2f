#!/usr/bin/env bash
# Create .venv and install splitnas with the agent, dev, edge, openvino and sweep extras; re-runs only when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "splitnas: creating virtual environment in .venv" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.splitnas-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "splitnas: installing dependencies (torch 2.14.1 takes about a minute)" >&2
    # pip's local-index configuration on some machines prints one harmless warning per package: hide those
    .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v "is ignored: it is neither" || true; }
    .venv/bin/python -m pip install --quiet -e ".[agent,dev,edge,openvino,sweep]" 2>&1 | { grep -v "is ignored: it is neither" || true; }
    echo "$want" > "$stamp"
fi

#!/usr/bin/env bash
# The test command of the README: set up .venv if needed, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# -- browser tests (tests/api/test_dashboard.py): Debian's Chromium, driven by Playwright; installed under CI,
# skipped elsewhere when absent
if [ "${CI:-}" = "true" ] && [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# -- end of browser tests
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The test command of the README: set up .venv if needed, start a throwaway PostgreSQL server (installed
# from Debian's package when missing), run the whole test suite against SQLite and PostgreSQL, stop the server.
# With SPLITNAS_TEST_POSTGRES_URL already set, that server is used instead. Under CI (CI set) PostgreSQL is
# required; elsewhere, without it, the PostgreSQL cases are skipped.
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
.venv/bin/mypy spaces db predictor api nas profiler pipeline edge   # the product code (config in pyproject.toml)
if [ -z "${SPLITNAS_TEST_POSTGRES_URL:-}" ]; then
    pg_dir=$(mktemp -d /tmp/splitnas-pg.XXXXXX)  # /tmp: the postgres user can reach it, the socket path is short
    trap 'bash scripts/postgres.sh stop "$pg_dir"' EXIT
    started=$(date +%s)
    if url=$(bash scripts/postgres.sh start "$pg_dir"); then
        export SPLITNAS_TEST_POSTGRES_URL=$url
        echo "splitnas: PostgreSQL started in $(( $(date +%s) - started )) s ($url)" >&2
    else
        case ${CI:-} in
            "" | 0 | false | no) echo "splitnas: PostgreSQL could not be started: its tests are skipped" >&2 ;;
            *) echo "splitnas: PostgreSQL could not be started (see above); CI tests both backends" >&2; exit 1 ;;
        esac
    fi
fi
.venv/bin/python -m pytest "$@"

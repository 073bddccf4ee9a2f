#!/usr/bin/env bash
# The main job of the README: set up .venv if needed, then profile this CPU, fit predictors, start the
# service, search an architecture + split point against it, and write a report (reports/demo/index.html).
# HWNASBENCH=/path/to/hwnasbench adds the Raspberry Pi 4 / Jetson TX2 tables of HW-NAS-Bench.
# Extra arguments go to `splitnas-pipeline` (see `.venv/bin/splitnas-pipeline --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/splitnas-pipeline "$@"

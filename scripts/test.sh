#!/usr/bin/env bash
# Set up with the dev and train extras, then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,train
export YOLO_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy vision models datasets evidence cases pipelines api nonsite
.venv/bin/python -m pytest -q "$@"

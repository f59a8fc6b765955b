#!/usr/bin/env bash
# Install PyTorch into the given venv, choosing a CPU build on a CPU-only box.
#
#   scripts/install-torch.sh VENV_PYTHON
#
# TORCH_SPEC overrides everything (e.g. TORCH_SPEC=torch for the newest CUDA build,
# TORCH_SPEC="torch==2.13.0 --index-url URL" for a specific wheel index).
# Without it: with an NVIDIA GPU (nvidia-smi present) the default build is installed;
# without one we ask pip which build `torch==$TORCH_VERSION` resolves to and, if that
# is not a `+cpu` build, install from PyTorch's CPU wheel index instead.
set -euo pipefail
py="$1"
version="${TORCH_VERSION:-2.13.0}"

if "$py" -c "import torch" 2>/dev/null && [ -z "${TORCH_SPEC:-}" ]; then
    exit 0  # already installed: never reinstall behind the user's back
fi
if [ -n "${TORCH_SPEC:-}" ]; then
    # shellcheck disable=SC2086  # the spec may carry pip options on purpose
    exec "$py" -m pip install -q $TORCH_SPEC
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    exec "$py" -m pip install -q "torch==$version"
fi
report=$(mktemp)
trap 'rm -f "$report"' EXIT
"$py" -m pip install -q --dry-run --ignore-installed --no-deps --report "$report" "torch==$version"
if "$py" - "$report" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["install"]
sys.exit(0 if any("+cpu" in i["metadata"]["version"] for i in items) else 1)
PY
then
    exec "$py" -m pip install -q "torch==$version"
fi
echo "install-torch: no GPU found; installing the CPU build of torch $version" >&2
exec "$py" -m pip install -q "torch==$version+cpu" --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple

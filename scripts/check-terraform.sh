#!/usr/bin/env bash
# Static checks of terraform/ and examples/ that need no AWS account and no provider downloads:
# - `terraform fmt -check -recursive` when terraform is installed (skipped with the reason
#   otherwise: fmt needs no providers, `terraform validate` does, so it is not run here);
# - checkov (PyPI, pinned, in a venv under ~/.cache/openwa) with zero failed checks; every
#   skipped check is justified inline with `#checkov:skip=CKV_...:reason`.
# The HCL is also parsed and compared with the code by `cargo test -p openwa-aws --test terraform`.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
VENV="${OPENWA_CACHE:-$HOME/.cache/openwa}/checkov-${CHECKOV_VERSION}"

log() { printf '\n==> %s\n' "$*"; }

log "terraform fmt"
if command -v terraform >/dev/null 2>&1; then
  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff terraform examples
  echo "terraform fmt: clean"
else
  echo "terraform fmt skipped: no terraform binary on PATH (install it from HashiCorp's apt repository to run this check)"
fi

log "checkov ${CHECKOV_VERSION}"
if [ ! -x "$VENV/bin/checkov" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "checkov==${CHECKOV_VERSION}"
fi
start=$(date +%s)
# --download-external-modules false: local modules only; the run needs no network.
"$VENV/bin/checkov" --quiet --compact --framework terraform \
  --download-external-modules false --skip-download \
  -d terraform -d examples
echo "checkov: no failed checks ($(($(date +%s) - start)) s)"

#!/usr/bin/env bash
# One command for a fresh machine: install what is missing, build, run the demo (default mount ./mnt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/assetfs.js demo "${1:-./mnt}"

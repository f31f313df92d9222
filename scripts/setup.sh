#!/usr/bin/env bash
# Create .venv with archc and its test dependencies. The CPU build of torch is installed first,
# pinned, so that nothing later lets pip resolve a newer torch with CUDA packages.
# System packages (Graphviz for `archc render`, Debian's Fashion-MNIST for the accuracy tests)
# come from apt-get when this runs as root on Debian/Ubuntu; elsewhere the tests that need them skip.
set -euo pipefail
cd "$(dirname "$0")/.."
SYSTEM_PACKAGES="graphviz dataset-fashion-mnist"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=$(for p in $SYSTEM_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
  fi
else
  echo "setup: not root with apt-get; install these yourself if wanted: $SYSTEM_PACKAGES" >&2
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
# torch named again: nothing an extra pulls in may move it
.venv/bin/python -m pip install -q -e ".[test,bench,export]" "torch==2.13.0"

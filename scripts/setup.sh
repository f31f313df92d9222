#!/usr/bin/env bash
# Create .venv with archc and its test dependencies. The CPU build of torch is installed first,
# pinned, so that nothing later lets pip resolve a newer torch with CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,bench]"

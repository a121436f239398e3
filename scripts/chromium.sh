#!/usr/bin/env bash
# Install Debian's chromium (and CJK fonts) if missing: tests/test_notebooks.py loads the notebooks'
# maps in headless Chromium, with the network cut, to prove they draw without internet, and
# tests/test_sheets.py lays the Chinese lead sheets out at phone and A4 widths. Idempotent.
# Without root (and sudo) it only warns: the browser test then skips locally, but fails under CI.
set -euo pipefail
if [[ -x /usr/bin/chromium ]] && dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "scripts/chromium.sh: /usr/bin/chromium is missing and installing it needs root: apt-get install chromium" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q chromium fonts-noto-cjk

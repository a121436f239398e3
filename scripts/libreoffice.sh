#!/usr/bin/env bash
# Install Debian's LibreOffice Calc (headless) if missing: tests/test_liaison_files.py converts the
# XLSX files wastetrack mails to liaisons (their leads, the reply sheet, the credit list, the
# monthly report) with `soffice --headless --convert-to`, to prove a county office can open them.
# Idempotent. Without root (and sudo) it only warns: that test then skips locally, but fails under CI.
set -euo pipefail
if command -v soffice >/dev/null 2>&1 && dpkg -s libreoffice-calc >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "scripts/libreoffice.sh: soffice is missing and installing it needs root: apt-get install libreoffice-calc" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends libreoffice-calc >/dev/null; then
  "${as_root[@]}" apt-get update -q   # a clean machine may have no package lists yet
  "${as_root[@]}" apt-get install -y -q --no-install-recommends libreoffice-calc
fi

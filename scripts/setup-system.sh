#!/usr/bin/env bash
# Debian packages the test suite uses: Chromium (the browser test) and PostgreSQL 15 (the
# PostgreSQL data-layer tests). Installs them when missing and this user may (root or sudo).
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "warning: cannot install ${need[*]} (not root, no sudo); their tests will be skipped." >&2
  exit 0
fi
echo "Installing Debian packages: ${need[*]} ..."
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/workbench-apt.log 2>&1; then
  $SUDO apt-get update -q >>/tmp/workbench-apt.log 2>&1
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/workbench-apt.log 2>&1 \
    || { echo "apt-get failed; see /tmp/workbench-apt.log" >&2; tail -20 /tmp/workbench-apt.log >&2; exit 1; }
fi

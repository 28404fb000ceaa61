#!/usr/bin/env bash
# Make sure Debian's chromium is installed: the console's browser tests drive it through
# Playwright's Python package (executable_path=/usr/bin/chromium), never `playwright install`.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
    echo "ensure-chromium: installing Debian's chromium" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

#!/usr/bin/env bash
# Installs what the web viewer's end-to-end test needs: Debian's chromium (apt, as root) and
# playwright-core (npm, in tests/e2e). Playwright's own browser downloads are never used: the
# test drives /usr/bin/chromium. Safe to run again; it only installs what is missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E="$REPO/tests/e2e"

if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
else
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
            echo "chromium is missing and installing it needs root: run this script as root" >&2
            exit 1
        fi
    else
        SUDO=""
    fi
    echo "installing Debian's chromium with apt-get"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node and npm are needed (Node 20 or newer: playwright-core needs it): install them, e.g. apt-get install -y nodejs npm" >&2
    exit 1
fi

# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing anyway; the variable keeps
# it that way should a future version change its mind.
cd "$E2E"
if [ -f package-lock.json ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
else
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund
fi
echo "e2e ready: node $(node --version), playwright-core in $E2E/node_modules"

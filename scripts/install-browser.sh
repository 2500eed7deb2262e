#!/bin/sh
# Installs Debian's chromium and chromium-driver (same version) for the browser tests, when missing.
# Needs root (as in CI); a machine that already has both is left alone.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: chromium and chromium-driver are missing and this is not root;" \
         "run: sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium chromium-driver

#!/usr/bin/env bash
# System packages envgym's families need beyond PyPI, installed with Debian's apt-get where they
# are missing:
#   - chromium: the browser family drives Debian's Chromium (Playwright cannot download its own
#     browser on machines without general network access);
#   - libegl1, libegl-mesa0, libgl1-mesa-dri: headless OpenGL (Mesa EGL) for robot rendering.
# Runs apt-get as root, or through sudo when there is one; does nothing when all are present.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "envgym: please install: ${missing[*]} (no apt-get on this machine)" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
echo "envgym: installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null

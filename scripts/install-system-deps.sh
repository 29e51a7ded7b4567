#!/usr/bin/env bash
# What envgym's families need beyond PyPI, installed where it is missing. Run it after
# `pip install -e '.[all]'`, with the same Python first on PATH (or named in $PYTHON): it asks
# envgym which Chromium it would launch, and may use Playwright.
#   - Chromium for the browser family: Debian's `chromium` package where apt has one (Playwright
#     cannot download its own browser on machines without general network access); where apt
#     has none (Ubuntu ships Chromium only as a snap, which Playwright can't drive) or there is
#     no apt, Playwright's own download (`python -m playwright install chromium`).
#   - libegl1, libegl-mesa0, libgl1-mesa-dri: headless OpenGL (Mesa EGL) for robot rendering,
#     with apt; without apt, a warning names what to install when libEGL is not found.
# Runs apt-get as root, or through sudo when there is one; does nothing when all are present.
set -euo pipefail

python="${PYTHON:-$(command -v python || command -v python3 || echo python)}"
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
has_apt=0
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    has_apt=1
fi

# The Chromium envgym would launch (envgym.browser.launch.chromium_executable), if any.
need_chromium=0
if ! "$python" -c 'import sys; from envgym.browser.launch import chromium_executable as c
sys.exit(c() is None)' >/dev/null 2>&1; then
    if ! "$python" -c 'import envgym.browser.launch, playwright' >/dev/null 2>&1; then
        echo "envgym: run this after \`pip install -e '.[all]'\` (it needs envgym and" \
            "Playwright in $python), or set PYTHON to that interpreter" >&2
        exit 1
    fi
    need_chromium=1
fi

missing=()
if [ "$has_apt" = 1 ]; then
    for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [ "$status" = "install ok installed" ] || missing+=("$pkg")
    done
elif ! { ldconfig -p 2>/dev/null || true; } | grep -q 'libEGL\.so\.1'; then
    echo "envgym: libEGL (Mesa EGL) not found: robot rendering needs it; install your" \
        "distribution's Mesa EGL package (e.g. mesa-libEGL)" >&2
fi

playwright_chromium=0
if [ "$need_chromium" = 1 ]; then
    if [ "$has_apt" = 1 ]; then
        $sudo apt-get update -qq
        # A real package, not a transitional one that installs a snap (it depends on snapd).
        policy="$(apt-cache policy chromium 2>/dev/null || true)"
        about="$(apt-cache show chromium 2>/dev/null || true)"
        if grep -q 'Candidate: [^(]' <<<"$policy" &&
            ! grep -Eq '^(Pre-)?Depends:.*\bsnapd\b' <<<"$about"; then
            missing+=(chromium)
        else
            playwright_chromium=1
        fi
    else
        playwright_chromium=1
    fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
    echo "envgym: installing system packages: ${missing[*]}"
    [ "$need_chromium" = 1 ] || $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
if [ "$playwright_chromium" = 1 ]; then
    echo "envgym: no Debian chromium package here: installing Playwright's own Chromium"
    if [ "$has_apt" = 1 ]; then
        "$python" -m playwright install --with-deps chromium
    else
        "$python" -m playwright install chromium
    fi
fi

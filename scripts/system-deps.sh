#!/usr/bin/env bash
# Installs the system programs Covey's tests need that a fresh machine lacks (Debian/Ubuntu):
# - redis-server: the relay's multi-node tests; redis-cli (redis-tools) forms the Redis Cluster of
#   tests/relay/redis-cluster.test.ts;
# - chromium, firefox-esr, and WebKit (webkit2gtk-driver: WebKitWebDriver; libwebkit2gtk-4.1-0:
#   its MiniBrowser) under xvfb: the cross-browser tests (tests/browser/README.md);
# - fonts-liberation: real fonts for screenshots and layout checks.
# Runs as `npm test`'s pretest step and from .ci/run; installs only what is missing, without
# recommended packages. Without root or sudo it prints the command to run and fails: a missing
# browser or service is never silently skipped (in CI, CI=true, it is a failure like any other).
set -euo pipefail

missing=()
have_command() { command -v "$1" >/dev/null 2>&1; }
have_package() { dpkg -s "$1" >/dev/null 2>&1; }
# MiniBrowser is not on PATH; it ships inside libwebkit2gtk-4.1-0 (tests/browser/harness/webkit.ts).
# (No grep -q: it stops reading early, dpkg dies of SIGPIPE, and pipefail calls that a miss.)
have_minibrowser() { dpkg -L libwebkit2gtk-4.1-0 2>/dev/null | grep '/MiniBrowser$' >/dev/null; }

have_command redis-server || missing+=(redis-server)
have_command redis-cli || missing+=(redis-tools)
have_command chromium || missing+=(chromium)
have_package fonts-liberation || missing+=(fonts-liberation)
have_command firefox-esr || missing+=(firefox-esr)
have_command WebKitWebDriver || missing+=(webkit2gtk-driver)
have_minibrowser || missing+=(libwebkit2gtk-4.1-0)
{ have_command Xvfb && have_command xvfb-run; } || missing+=(xvfb)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo"
else
  echo "Covey's tests need: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Installed but still unusable is a failure too.
have_command chromium && have_command firefox-esr && have_command WebKitWebDriver && have_minibrowser \
  && have_command Xvfb && have_command redis-server && have_command redis-cli \
  || { echo "system-deps: installation finished but a browser or service is still missing" >&2; exit 1; }

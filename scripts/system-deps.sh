#!/usr/bin/env bash
# Installs the system programs Covey's tests need that a fresh machine lacks (Debian/Ubuntu):
# redis-server for the relay's multi-node tests (redis-cli, from redis-tools, forms the Redis Cluster
# of tests/relay/redis-cluster.test.ts), chromium for browser end-to-end tests.
# Runs as `npm test`'s pretest step and from .ci/run. Without root or sudo it prints the command
# to run and fails, so a missing service is never silently skipped.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-liberation)

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

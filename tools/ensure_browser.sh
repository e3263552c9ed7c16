#!/usr/bin/env bash
# The browser tests (tests/e2e) drive Debian's chromium. `make test` calls this first: where chromium is missing it
# is installed when this machine can (root with apt-get); otherwise nothing fails here, the suite skips the browser
# tests, and its last line names them with the command that enables them (tests/conftest.py).
set -u
CHROMIUM="${RESIDUE_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if [ "$CHROMIUM" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: installing Debian's chromium and chromium-driver for the browser tests"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; then
    exit 0
  fi
  echo "ensure_browser: apt-get could not install chromium; the browser tests will be skipped" >&2
else
  echo "ensure_browser: $CHROMIUM is missing and this is not root with apt-get; the browser tests will be skipped" >&2
fi
exit 0

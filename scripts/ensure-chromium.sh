#!/usr/bin/env bash
# Makes sure a Chromium is available for the dashboard's browser test (test/e2e/dashboard-browser.test.ts
# drives it headless with playwright-core): Debian's `chromium`, installed when we may. Without one
# the test skips itself and says why, so this script only warns when it cannot install.
set -uo pipefail
if [[ -n "${EDDY_CHROMIUM:-}" ]]; then
  [[ -x "$EDDY_CHROMIUM" ]] && exit 0
  echo "EDDY_CHROMIUM=$EDDY_CHROMIUM is not an executable file" >&2
  exit 1
fi
if "$(dirname "${BASH_SOURCE[0]}")/ensure-debian-server.sh" chromium chromium EDDY_CHROMIUM \
  "The dashboard's browser test needs Chromium: sudo apt-get install chromium (Debian/Ubuntu), or point EDDY_CHROMIUM at a Chrome or Chromium binary."; then
  exit 0
fi
echo "the dashboard's browser test will be skipped" >&2
exit 0

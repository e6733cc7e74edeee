#!/usr/bin/env bash
# Makes sure bench/python-client.ts has its Redis baseline: Debian's python3-redis for
# /usr/bin/python3. Installed when we may (root or passwordless sudo, and apt-get); otherwise the
# benchmark leaves the baseline out and says why, so this script only warns.
set -uo pipefail
python=/usr/bin/python3
have() { [[ -x "$python" ]] && "$python" -c 'import redis' >/dev/null 2>&1; }
have && exit 0
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
fi
if [[ "${sudo[0]:-}" != none ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing python3-redis from Debian's packages" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-redis ||
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-redis; }
  have && exit 0
fi
echo "the Python Redis baseline will be left out: it needs python3-redis (sudo apt-get install python3-redis)" >&2
exit 0

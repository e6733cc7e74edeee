#!/usr/bin/env bash
# Makes sure a redis-server binary is available for the benchmarks' Redis baselines
# (bench/redis.ts starts its own, on a free loopback port, without persistence).
# Installs Debian's package when we may; otherwise explains what to do.
set -euo pipefail

if [[ -n "${EDDY_REDIS_SERVER:-}" ]]; then
  if [[ -x "$EDDY_REDIS_SERVER" ]]; then exit 0; fi
  echo "EDDY_REDIS_SERVER=$EDDY_REDIS_SERVER is not an executable file" >&2
  exit 1
fi

# Debian installs to /usr/bin; /usr/sbin is checked too in case a build put it there.
if command -v redis-server >/dev/null 2>&1 || [[ -x /usr/sbin/redis-server ]]; then
  exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    sudo=(none)
  fi
fi

if [[ "${sudo[0]:-}" != none ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing redis-server from Debian's packages" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
  # The package enables a service on port 6379; the benchmarks start their own server, so make
  # sure it does not keep running (only where systemd is the running init).
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
  exit 0
fi

cat >&2 <<'MSG'
redis-server was not found, and it cannot be installed automatically here (needs root or
passwordless sudo, and apt-get). The benchmarks' Redis baselines need redis-server 6 or later:
  - macOS:          brew install redis
  - Debian/Ubuntu:  sudo apt-get install redis-server
  - or point the benchmarks at a binary: export EDDY_REDIS_SERVER=/path/to/redis-server
MSG
exit 1

#!/usr/bin/env bash
# Makes sure a nats-server binary is available for the test kit (test/kit/nats-server.ts).
# Installs Debian's package when we may; otherwise explains what to do.
set -euo pipefail

if [[ -n "${EDDY_NATS_SERVER:-}" ]]; then
  if [[ -x "$EDDY_NATS_SERVER" ]]; then exit 0; fi
  echo "EDDY_NATS_SERVER=$EDDY_NATS_SERVER is not an executable file" >&2
  exit 1
fi

# Debian installs to /usr/sbin, which is not on a non-root user's PATH; the test kit looks there too.
if command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]]; then
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
  echo "installing nats-server from Debian's packages" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server
  # The package enables a systemd service on port 4222; tests start their own servers, so make
  # sure it does not keep running (only where systemd is the running init).
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now nats-server >/dev/null 2>&1 || true
  fi
  exit 0
fi

cat >&2 <<'MSG'
nats-server was not found, and it cannot be installed automatically here (needs root or
passwordless sudo, and apt-get). The tests need nats-server 2.9 or later. Either:
  - macOS:          brew install nats-server
  - Debian/Ubuntu:  sudo apt-get install nats-server
  - anywhere:       download a release from https://github.com/nats-io/nats-server/releases
                    and put the nats-server binary on your PATH
  - or point the tests at a binary: export EDDY_NATS_SERVER=/path/to/nats-server
MSG
exit 1

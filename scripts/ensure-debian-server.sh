#!/usr/bin/env bash
# Makes sure a server binary from Debian's packages is available, installing the package when we
# may (root or passwordless sudo, and apt-get); otherwise explains what to do.
#
#   ensure-debian-server.sh <binary> <package> <override env var> <help text>
#
# The package's own service (enabled on install) is disabled: tests and benchmarks start their
# own servers on free loopback ports.
set -euo pipefail
binary="$1" package="$2" override="$3" help="$4"

if [[ -n "${!override:-}" ]]; then
  if [[ -x "${!override}" ]]; then exit 0; fi
  echo "$override=${!override} is not an executable file" >&2
  exit 1
fi

# Debian installs some servers to /usr/sbin, which is not on a non-root user's PATH.
if command -v "$binary" >/dev/null 2>&1 || [[ -x "/usr/sbin/$binary" ]]; then
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
  echo "installing $package from Debian's packages" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package"
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now "$package" >/dev/null 2>&1 || true
  fi
  exit 0
fi

echo "$binary was not found, and it cannot be installed automatically here (needs root or" >&2
echo "passwordless sudo, and apt-get). $help" >&2
echo "Or point Eddy at a binary: export $override=/path/to/$binary" >&2
exit 1

#!/usr/bin/env bash
# Makes sure a nats-server binary is available for the test kit (test/kit/nats-server.ts) and
# `eddy up`, and that it is one without the replay slowdown below.
#
# nats-server before 2.9.15 counts a filtered consumer's pending messages again, by scanning its
# message block, for every message it delivers once the consumer is past the middle of the
# stream's newest block. A source split replaying its partition after a recovery (the stream's
# partitions are interleaved in one stream) then reads ~150 messages/s instead of tens of
# thousands, with the server at 100 % CPU (docs/STACK-NOTES.md in this repository, "nats-server").
# Debian 12's package is 2.9.10: where that is what apt has, the package of Debian 13 (trixie) is
# installed instead, downloaded by apt (so its signature is checked with Debian's keyring).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
MINIMUM=2.9.15
help="The tests need nats-server $MINIMUM or later: brew install nats-server (macOS), sudo apt-get install nats-server where apt has 2.9.15 or later (Debian 13 does), or a release from https://github.com/nats-io/nats-server/releases on your PATH."

# The version of a nats-server binary ("2.9.10"), or nothing.
version_of() { "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p'; }
# True when version $1 is at least $MINIMUM.
recent_enough() { [[ -n "$1" && "$(printf '%s\n%s\n' "$MINIMUM" "$1" | sort -V | head -1)" == "$MINIMUM" ]]; }
found() { if [[ -n "${EDDY_NATS_SERVER:-}" ]]; then echo "$EDDY_NATS_SERVER"; else command -v nats-server 2>/dev/null || { [[ -x /usr/sbin/nats-server ]] && echo /usr/sbin/nats-server; } || true; fi; }

"$here/ensure-debian-server.sh" nats-server nats-server EDDY_NATS_SERVER "$help"

binary="$(found)"
version="$(version_of "$binary")"
if recent_enough "$version"; then exit 0; fi

# Debian 13's nats-server package, downloaded by apt from a temporary source list (its signature
# checked with Debian's keyring; the system's lists and cache are left alone) and installed with
# dpkg. Each step must succeed; the caller carries on with a warning when one does not.
install_from_debian_13() {
  local work
  work="$(mktemp -d)" || return 1
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" &&
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$work/sources.list" &&
    local apt=("${sudo[@]}" apt-get -qq -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root) &&
    "${apt[@]}" update &&
    (cd "$work" && "${apt[@]}" download nats-server) &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive dpkg -i "$work"/nats-server_*.deb >/dev/null
  local status=$?
  "${sudo[@]}" rm -rf "$work"
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now nats-server >/dev/null 2>&1 || true
  fi
  return "$status"
}

# Too old. Only the package installed above (or found on the system) is replaced, and only by apt.
if [[ -z "${EDDY_NATS_SERVER:-}" ]] && command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
  fi
  if [[ "${sudo[0]:-}" != none ]]; then
    echo "nats-server $version is older than $MINIMUM (replays slow to a crawl); installing Debian 13's package" >&2
    if install_from_debian_13; then
      binary="$(found)"
      version="$(version_of "$binary")"
      if recent_enough "$version"; then exit 0; fi
    else
      echo "installing Debian 13's nats-server failed" >&2
    fi
  fi
fi

echo "warning: nats-server ${version:-of unknown version} at ${binary:-?} is older than $MINIMUM: a source's" >&2
echo "replay after a recovery reads a few hundred messages a second, and fault tests time out. $help" >&2

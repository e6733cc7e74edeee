#!/usr/bin/env bash
# Makes a Docker engine and docker-compose (v1) available for the compose test
# (test/e2e/docker-compose.test.ts). Idempotent: does nothing when `docker info` already answers.
#
# On these machines no engine runs by default and there is no systemd: Debian's docker.io
# (dockerd 20.10) and docker-compose (1.29) install with apt-get, and dockerd starts as root
# without a bridge or iptables rules (containers use the host network only, which is all Eddy's
# compose file needs). Never fails the caller: without root or apt the compose test skips itself.
#
#   EDDY_DOCKERD_LOG    dockerd's log file (default /tmp/eddy-dockerd.log)
#   EDDY_DOCKER_WAIT_S  how long to wait for the engine to answer (default 60)
set -uo pipefail

log_file="${EDDY_DOCKERD_LOG:-/tmp/eddy-dockerd.log}"
wait_s="${EDDY_DOCKER_WAIT_S:-60}"

note() { echo "ensure-docker: $*" >&2; }

engine_answers() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

if engine_answers && command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  note "not root: not installing or starting a Docker engine (the compose test will be skipped)"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    note "no apt-get: install docker and docker-compose yourself (the compose test will be skipped)"
    exit 0
  fi
  note "installing docker.io and docker-compose from Debian's packages"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose; } >>"$log_file" 2>&1; then
    note "apt-get install failed (see $log_file); the compose test will be skipped"
    exit 0
  fi
fi

if ! engine_answers; then
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    note "starting dockerd (host network only; log: $log_file)"
    # setsid: dockerd must outlive this script and the shell that ran it.
    setsid dockerd --bridge=none --iptables=false --ip-masq=false >>"$log_file" 2>&1 </dev/null &
  fi
  deadline=$((SECONDS + wait_s))
  until engine_answers; do
    if ((SECONDS >= deadline)); then
      note "dockerd did not answer within ${wait_s} s (see $log_file); the compose test will be skipped"
      exit 0
    fi
    sleep 1
  done
fi
note "docker engine ready: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
exit 0

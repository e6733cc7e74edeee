#!/usr/bin/env bash
# Makes sure a redis-server binary is available for the benchmarks' Redis baselines
# (bench/redis.ts starts its own, on a free loopback port, without persistence).
exec "$(dirname "${BASH_SOURCE[0]}")/ensure-debian-server.sh" redis-server redis-server EDDY_REDIS_SERVER \
  "The benchmarks' Redis baselines need redis-server 6 or later: brew install redis (macOS) or sudo apt-get install redis-server (Debian/Ubuntu)."

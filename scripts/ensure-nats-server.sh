#!/usr/bin/env bash
# Makes sure a nats-server binary is available for the test kit (test/kit/nats-server.ts).
exec "$(dirname "${BASH_SOURCE[0]}")/ensure-debian-server.sh" nats-server nats-server EDDY_NATS_SERVER \
  "The tests need nats-server 2.9 or later: brew install nats-server (macOS), sudo apt-get install nats-server (Debian/Ubuntu), or a release from https://github.com/nats-io/nats-server/releases on your PATH."

#!/bin/sh
# Entry point of the Eddy image: `eddy <args>` (coordinator, worker, or any client command).
#
# A worker's identity comes from its container. Compose runs Eddy on the host network, where a
# container's host name is the host's — the same for every replica of `--scale worker=N` — so
# when EDDY_WORKER_ID is unset it becomes the container's short id (what the host name would be
# on a bridge network). It survives restarts of the same container, as a worker id should.
set -e
if [ -z "${EDDY_WORKER_ID:-}" ]; then
  id="$(sed -n 's#.*/containers/\([0-9a-f]\{12\}\)[0-9a-f]\{52\}/.*#\1#p' /proc/self/mountinfo | head -n 1)"
  if [ -n "$id" ]; then
    EDDY_WORKER_ID="$id"
    export EDDY_WORKER_ID
  fi
fi
# Compiled JavaScript (cli/dist-build.ts, run by the image's build stage): no tsx at run time.
# The node flags are core/node-flags.ts's.
exec node --max-semi-space-size=32 /opt/eddy/cli/main.js "$@"

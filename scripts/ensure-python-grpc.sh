#!/usr/bin/env bash
# Makes sure the Python client's test (test/e2e/python-client.test.ts) can run: Debian's
# python3-grpcio (with python3-protobuf) for /usr/bin/python3, and protoc with the gRPC Python
# plugin (protobuf-compiler, protobuf-compiler-grpc; libprotobuf-dev for the well-known types) to
# generate the stubs from proto/. Installed
# when we may (root or passwordless sudo, and apt-get); otherwise the test skips itself and says
# why, so this script only warns.
set -uo pipefail
python=/usr/bin/python3
have() {
  [[ -x "$python" ]] && "$python" -c 'import grpc, google.protobuf' >/dev/null 2>&1 &&
    command -v protoc >/dev/null 2>&1 && command -v grpc_python_plugin >/dev/null 2>&1 &&
    [[ -f /usr/include/google/protobuf/struct.proto ]]
}
have && exit 0
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
fi
if [[ "${sudo[0]:-}" != none ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing python3-grpcio, protobuf-compiler and protobuf-compiler-grpc from Debian's packages" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3 python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  have && exit 0
fi
echo "the Python client's test will be skipped: it needs python3-grpcio, protobuf-compiler and protobuf-compiler-grpc (sudo apt-get install python3-grpcio protobuf-compiler protobuf-compiler-grpc)" >&2
exit 0

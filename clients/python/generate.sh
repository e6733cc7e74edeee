#!/usr/bin/env bash
# Generates the Python stubs of Eddy's public gRPC API (proto/eddy/v1, proto/eddy/v2) with protoc
# and the gRPC Python plugin, into clients/python/gen (or the directory given).
#   Debian/Ubuntu: sudo apt-get install python3-grpcio protobuf-compiler protobuf-compiler-grpc
#   elsewhere:     pip install grpcio grpcio-tools, then PROTOC="python -m grpc_tools.protoc" ./generate.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/gen}"
proto="$here/../../proto"
mkdir -p "$out"
if [[ -n "${PROTOC:-}" ]]; then
  # grpc_tools.protoc brings its own gRPC plugin and well-known types.
  $PROTOC -I "$proto" --python_out="$out" --grpc_python_out="$out" \
    "$proto"/eddy/v1/jobs.proto "$proto"/eddy/v1/features.proto "$proto"/eddy/v1/cluster.proto "$proto"/eddy/v2/feature_service.proto
else
  protoc -I "$proto" --python_out="$out" --grpc_python_out="$out" \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
    "$proto"/eddy/v1/jobs.proto "$proto"/eddy/v1/features.proto "$proto"/eddy/v1/cluster.proto "$proto"/eddy/v2/feature_service.proto
fi
echo "$out"

#!/usr/bin/env bash
# Regenerates graph/onnxpb from the ONNX schema that Debian's libonnx-dev
# installs, with protoc (protobuf-compiler) and protoc-gen-go.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -f /usr/include/onnx/onnx.proto ] || need+=(libonnx-dev)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
bin="$(go env GOPATH)/bin"
[ -x "$bin/protoc-gen-go" ] || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.10
PATH="$PATH:$bin" go generate ./graph/onnxpb

#!/usr/bin/env bash
# Installs what gotrain's make targets need, when it is missing: Debian
# packages (OpenBLAS, ONNX's test data, PyTorch and ONNX for the reference
# checks, Fashion-MNIST, scikit-learn's digits, OpenMPI for multi-worker
# training and its tests) and ONNX Runtime's CPU library from the npm
# package onnxruntime-node; g++ for the CUDA kernels' host emulator
# (backend/cuda/internal/emu). Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

want=(libopenblas-dev libonnx-testdata python3-torch python3-onnx python3-numpy dataset-fashion-mnist python3-sklearn g++ openmpi-bin libopenmpi-dev)
if [ "${1:-}" = "--min" ]; then
	want=(libopenblas-dev)
fi
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

# ONNX Runtime (tests only): its install script would fetch GPU files, so skip it.
if [ "${1:-}" != "--min" ] && [ ! -f .tools/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1 ]; then
	if command -v npm >/dev/null; then
		mkdir -p .tools/ort
		(cd .tools/ort && [ -f package.json ] || echo '{"private":true}' > package.json)
		(cd .tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent onnxruntime-node@1 >/dev/null) ||
			echo "deps: could not install onnxruntime-node; ONNX Runtime checks will be skipped"
	fi
fi
go mod download

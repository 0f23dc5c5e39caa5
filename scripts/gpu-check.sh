#!/usr/bin/env bash
# Runs the CUDA backend's tests on a GPU machine from binaries built
# elsewhere (`make gpu-bin` on a machine with Go): every kernel against the
# CPU backend on the GPU (and on the host emulator when a C++ compiler is
# there), transfers, the allocator, cuBLAS's math modes, and the PTX
# compilation with the machine's NVRTC. GOTRAIN_REQUIRE_GPU=1 makes a
# missing GPU or library a failure instead of a skip.
#
#   scripts/gpu-check.sh [OUTDIR]     (log: OUTDIR/gpu-test.log)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-out}
mkdir -p "$out"
[ -x bin/cuda.test ] || { echo "gpu-check: bin/cuda.test missing: run make gpu-bin first" >&2; exit 2; }
# NVRTC and cuBLAS from the Python wheels, where the machine has them.
if [ -z "${GOTRAIN_CUDA_LIB_PATH:-}" ] && command -v python3 >/dev/null; then
	GOTRAIN_CUDA_LIB_PATH=$(python3 -c 'import site, sys; print(":".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
	export GOTRAIN_CUDA_LIB_PATH
fi
export GOTRAIN_REQUIRE_GPU=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
(cd backend/cuda && ../../bin/cuda.test -test.v -test.count=1 -test.timeout 8m) 2>&1 | tee "$out/gpu-test.log"
rc=${PIPESTATUS[0]}
grep -E '^(--- FAIL|FAIL|ok|PASS)' "$out/gpu-test.log" | tail -20
exit "$rc"

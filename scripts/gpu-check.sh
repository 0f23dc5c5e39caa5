#!/usr/bin/env bash
# The CUDA backend's whole check on a GPU machine, from what `make gpu-bin`
# packed into .gpu/ (that machine needs no Go and no network; it needs the
# NVIDIA driver, and NVRTC and cuBLAS, which the Python wheels of PyTorch
# bring, and PyTorch for the benchmark's reference):
#
#   1. tests   backend/cuda's test binary on the GPU: every kernel against
#              the CPU backend, transfers, the allocator, cuBLAS's math
#              modes, NVRTC compiling every module, the executor on the zoo's
#              training and evaluation graphs, a warm step allocating
#              nothing (with and without CUDA graphs), status words at the
#              synchronisation, mirrored replicas on two streams equal to
#              one device, Dropout masks equal to the CPU's
#   2. goldens train's PyTorch goldens on the GPU (loss, gradients, 5 and 3
#              optimizer steps; one device and two mirrored streams)
#   3. conformance  `gotrain conformance --backend cuda` on Debian's ONNX
#              suites and ONNX 1.22's node tests, against the floor measured
#              on the emulator (backend/cuda/testdata/conformance)
#   4. mnist   `gotrain train` of the seed CNN on MNIST on the GPU and on the
#              CPU, single and mirrored on two streams; accuracies compared
#   5. bench   seed CNN and MLP training and inference at batches 256 and
#              1024 on gotrain's CUDA backend and on PyTorch with cuDNN
#              (bench/torch_gpu.py), as ratios
#
# It stops at its own time limit (GPU_CHECK_SECONDS, default 450: under 8
# minutes with the unpacking), skipping what is left, and prints a summary.
# Everything it writes goes to $OUT when set (the device tool brings that
# folder back), else to the folder given, else out/gpu:
#   summary.txt, results.txt (key=value), bench.jsonl, gpu.txt, *.log
# `go run ./bench/gpureport -in DIR -o docs/GPU.md` turns them into docs/GPU.md.
#
#   bash scripts/gpu-check.sh [OUTDIR]
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-${1:-out/gpu}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
limit=${GPU_CHECK_SECONDS:-450}
t0=$(date +%s)
left() { echo $((limit - ($(date +%s) - t0))); }
summary=$out/summary.txt
results=$out/results.txt
: >"$summary"
: >"$results"
: >"$out/bench.jsonl"
note() { echo "$*" | tee -a "$summary"; }
result() { echo "$1=$2" >>"$results"; }
failed=0

[ -f .gpu/bin.tar.xz ] && [ -f .gpu/data.tar.xz ] || {
	echo "gpu-check: .gpu/bin.tar.xz or .gpu/data.tar.xz is missing: run make gpu-bin, and carry .gpu" >&2
	exit 2
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unpack() {
	tar -xJf "$1" -C "$work" 2>/dev/null ||
		python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$work"
}
unpack .gpu/bin.tar.xz || { echo "gpu-check: cannot unpack .gpu/bin.tar.xz" >&2; exit 2; }
unpack .gpu/data.tar.xz || { echo "gpu-check: cannot unpack .gpu/data.tar.xz" >&2; exit 2; }
bin=$work
chmod +x "$bin"/gotrain-cuda "$bin"/cuda.test "$bin"/train.test

# Where the binaries find the libraries and the data.
if [ -z "${GOTRAIN_CUDA_LIB_PATH:-}" ] && command -v python3 >/dev/null; then
	GOTRAIN_CUDA_LIB_PATH=$(python3 -c 'import site; print(":".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
fi
export GOTRAIN_CUDA_LIB_PATH
export GOTRAIN_DATA_DIR=$root/.gpu          # mnist/
export GOTRAIN_SHARED_DIR=$work/shared      # golden/
suites=
for s in node pytorch-converted pytorch-operator simple v1.22; do
	suites=${suites:+$suites:}$work/onnx/$s
done
export GOTRAIN_ONNX_TESTS=$suites
export GOTRAIN_REQUIRE_GPU=1 # a missing GPU or library fails, never skips
export GOTRAIN_EMU=0         # the tests run on the GPU, not the emulator
export GOTRAIN_PTX_CACHE=$work/ptx # NVRTC compiles each module once for all the processes

date -u +%Y-%m-%dT%H:%M:%SZ >"$out/date.txt"
result date "$(cat "$out/date.txt")"
if command -v nvidia-smi >/dev/null; then
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1
	nvidia-smi >"$out/nvidia-smi.txt" 2>&1
	result gpu "$(head -1 "$out/gpu.txt")"
	result cuda "$(grep -o 'CUDA Version: [0-9.]*' "$out/nvidia-smi.txt" | head -1 | sed 's/CUDA Version: //')"
else
	note "gpu-check: no nvidia-smi on this machine"
fi
note "gpu-check on $(head -1 "$out/gpu.txt" 2>/dev/null), $(date -u)"

# step NAME SECONDS CMD...: runs CMD in the time left (at most SECONDS),
# output in $out/NAME.log; the exit status is in $rc.
step() {
	local name=$1 secs=$2
	shift 2
	local l
	l=$(left)
	if [ "$l" -lt 30 ]; then
		note "SKIPPED $name: the check's time limit ($limit s) is reached"
		result "$name" skipped
		rc=124
		return
	fi
	[ "$secs" -gt $((l - 15)) ] && secs=$((l - 15))
	local s0
	s0=$(date +%s)
	timeout -k 5 "$secs" "$@" >"$out/$name.log" 2>&1
	rc=$?
	result "$name.seconds" $(($(date +%s) - s0))
	[ "$rc" = 124 ] && note "TIMEOUT $name after $secs s"
}

# 1. The test binary of backend/cuda on the GPU.
(cd backend/cuda && step tests 200 "$bin/cuda.test" -test.v -test.count=1 -test.timeout 190s)
rc_tests=$(grep -c '^--- FAIL' "$out/tests.log" 2>/dev/null || true)
pass=$(grep -c -- '--- PASS' "$out/tests.log" 2>/dev/null || true)
skip=$(grep -c -- '--- SKIP' "$out/tests.log" 2>/dev/null || true)
if grep -q '^ok\|^PASS$' "$out/tests.log" && [ "$rc_tests" = 0 ]; then
	note "tests:       PASS ($pass passed, $skip skipped; log tests.log)"
	result tests pass
else
	note "tests:       FAIL ($rc_tests top-level failures; log tests.log)"
	grep -E '^\s*(--- FAIL|FAIL)' "$out/tests.log" | head -20 | tee -a "$summary"
	result tests fail
	failed=1
fi
grep -E 'graphs=|captured|launched' "$out/tests.log" | head -5 >>"$summary" || true

# 2. The PyTorch goldens on the GPU.
(cd train && GOTRAIN_TEST_BACKENDS=cuda step goldens 120 "$bin/train.test" -test.v -test.count=1 -test.run 'TestGolden' -test.timeout 110s)
gpass=$(grep -cE -- '--- PASS: TestGolden.*cuda' "$out/goldens.log" 2>/dev/null || true)
gfail=$(grep -cE -- '--- FAIL' "$out/goldens.log" 2>/dev/null || true)
worst=$(grep -o 'max abs diff [0-9.e+-]*' "$out/goldens.log" 2>/dev/null | awk '{print $4}' | sort -g | tail -1)
if [ "$gfail" = 0 ] && [ "$gpass" -gt 0 ] && grep -q '^PASS$\|^ok' "$out/goldens.log"; then
	note "goldens:     PASS ($gpass runs on cuda; largest difference from PyTorch ${worst:-?}; log goldens.log)"
	result goldens pass
else
	note "goldens:     FAIL ($gpass passed, $gfail failed; log goldens.log)"
	grep -E -- '--- FAIL|_test.go:[0-9]+: ' "$out/goldens.log" | grep -v 'max abs diff' | sed 's/^ *//' | sort -u | head -8 | tee -a "$summary"
	result goldens fail
	failed=1
fi
result goldens.passed "$gpass"
result goldens.worst "${worst:-}"

# 3. ONNX conformance through the CLI, against the floor.
step conformance 150 "$bin/gotrain-cuda" conformance --backend cuda --floor backend/cuda/testdata/conformance
if [ "$rc" = 0 ]; then
	note "conformance: PASS (0 failed, the floor met; log conformance.log)"
	result conformance pass
else
	note "conformance: FAIL (exit $rc; log conformance.log)"
	grep -E '^(BELOW FLOOR|FAIL)' "$out/conformance.log" | head -20 | tee -a "$summary"
	result conformance fail
	failed=1
fi
grep -E '^suite ' "$out/conformance.log" | sed 's/; most missing.*//' | tee -a "$summary" | while read -r _ name p _ f _ u _; do
	echo "conformance.${name%:}=$p passed, $f failed, $u unsupported" >>"$results"
done
grep -E '^floor |passed, .* failed, .* skipped$' "$out/conformance.log" | tail -2 | tee -a "$summary"

# 4. Training the seed CNN on MNIST through the CLI: GPU and CPU.
model=$work/cnn.onnx
"$bin/gotrain-cuda" models export cnn --input 1x28x28 --classes 10 -o "$model" >/dev/null 2>&1
mnist_run() { # name backend extra-flags...
	local name=$1 be=$2
	shift 2
	step "mnist-$name" 90 "$bin/gotrain-cuda" train --model "$model" --data mnist --subset 12000 --val-split 0.2 --epochs 2 \
		--batch-size 128 --optimizer adam --lr 2e-3 --seed 1 --backend "$be" --out "$work/mnist-$name" "$@"
	local acc
	acc=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1])); e=h["epochs"] if isinstance(h,dict) and "epochs" in h else h; print(e[-1]["val_accuracy"])' \
		"$work/mnist-$name/history.json" 2>/dev/null || echo "")
	if [ "$rc" = 0 ] && [ -n "$acc" ]; then
		note "mnist-$name: val_accuracy $acc after 2 epochs of 9600 images (log mnist-$name.log)"
	else
		note "mnist-$name: FAIL (exit $rc; log mnist-$name.log)"
		tail -3 "$out/mnist-$name.log" | tee -a "$summary"
		failed=1
	fi
	result "mnist.$name" "$acc"
}
mnist_run cuda cuda
mnist_run cuda-mirrored2 cuda --strategy mirrored --replicas 2
mnist_run cpu cpu
a=$(grep '^mnist.cuda=' "$results" | cut -d= -f2)
c=$(grep '^mnist.cpu=' "$results" | cut -d= -f2)
if [ -n "$a" ] && [ -n "$c" ]; then
	# Two epochs from the same seed: the weights differ by the float32
	# rounding of the products' sums (cuBLAS's order against OpenBLAS's),
	# which grows over 150 steps and moves predictions near ties; half a
	# percentage point (12 of 2,400 images) bounds that, while a wrong
	# gradient costs far more.
	if python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) <= 0.005 else 1)' "$a" "$c"; then
		note "mnist:       PASS (GPU $a, CPU $c)"
		result mnist pass
	else
		note "mnist:       FAIL (GPU $a, CPU $c differ by more than 0.005)"
		result mnist fail
		failed=1
	fi
fi

# 5. Throughput beside PyTorch with cuDNN.
bench_ours() { # mode model batch
	local flags=(--backend cuda --model "$2" --batch "$3" --seconds 2)
	[ "$2" = cnn ] && flags+=(--input 3x32x32) || flags+=(--input 1x28x28)
	[ "$1" = train ] && flags+=(--train)
	step "bench-$1-$2-$3" 40 "$bin/gotrain-cuda" bench "${flags[@]}"
	local sps
	sps=$(grep -o '[0-9.]* samples/s' "$out/bench-$1-$2-$3.log" | head -1 | cut -d' ' -f1)
	echo "{\"name\": \"$1/$2/$3\", \"impl\": \"gotrain\", \"samples_per_sec\": ${sps:-null}}" >>"$out/bench.jsonl"
}
for mode in train infer; do
	for m in cnn mlp; do
		for b in 256 1024; do
			bench_ours "$mode" "$m" "$b"
		done
	done
done
step bench-torch 150 python3 bench/torch_gpu.py --min-time 2
if [ "$rc" = 0 ]; then
	sed 's/^{/{"impl": "pytorch", /' "$out/bench-torch.log" | grep '^{' >>"$out/bench.jsonl"
else
	note "bench: PyTorch did not run (exit $rc; log bench-torch.log)"
fi
python3 - "$out/bench.jsonl" <<'EOF' | tee -a "$summary"
import json, sys
rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    rows.setdefault(r["name"], {})[r["impl"]] = r.get("samples_per_sec")
print("%-16s %14s %14s %8s" % ("bench", "gotrain /s", "pytorch /s", "ratio"))
for k in sorted(rows):
    g, p = rows[k].get("gotrain"), rows[k].get("pytorch")
    ratio = "%.2f" % (g / p) if g and p else "-"
    print("%-16s %14s %14s %8s" % (k, "%.0f" % g if g else "-", "%.0f" % p if p else "-", ratio))
EOF

echo
result seconds $(($(date +%s) - t0))
if [ "$failed" = 0 ]; then
	note "gpu-check: PASS in $(($(date +%s) - t0)) s; results in $out"
else
	note "gpu-check: FAIL in $(($(date +%s) - t0)) s; results in $out"
fi
exit "$failed"

#!/usr/bin/env bash
# make bench: gotrain's benchmarks and PyTorch's on the same machine in the
# same run, printed as one table with the ratios. PyTorch 1.13 (Debian's
# python3-torch) is tried in several configurations, since it is slow here
# unless tuned, and the best one is reported for each workload:
#   its default (1 thread), 2 threads, OPENBLAS_NUM_THREADS=1 (its OpenBLAS
#   pool otherwise fights its own threads), and high glibc malloc
#   thresholds (otherwise thousands of page faults a step).
# Where PyTorch's OpenBLAS does not know the CPU and falls back to a generic
# kernel on a CPU with AVX2 or AVX-512, every PyTorch run gets
# OPENBLAS_CORETYPE set to the matching vector kernel, so that it is
# measured at its best. gotrain's benchmarks run once more per round with
# OPENBLAS_CORETYPE=Prescott, the fallback OpenBLAS 0.3.21 picks on CPUs it
# does not know, to show that gotrain's speed does not depend on it. A last
# pass runs each workload in a process of its own, on both sides, for its
# peak resident memory (ru_maxrss).
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/bench
mkdir -p "$out"
threads=$(nproc)
# The machine may be shared: each side runs BENCH_ROUNDS times (default 2),
# alternating, and the report keeps each workload's best figure.
rounds=${BENCH_ROUNDS:-2}
: > "$out/go.txt"
: > "$out/go-prescott.txt"
: > "$out/torch.jsonl"
: > "$out/mem-go.txt"
: > "$out/mem-torch.jsonl"
: > "$out/mpi.txt"
# Multi-worker training: 2 worker processes of 1 thread (mpirun) against 1
# of 2 threads, on this machine; bin/gotrain is what `make build` made.
have_mpi=0
if command -v mpirun >/dev/null && [ -x bin/gotrain ]; then
	have_mpi=1
else
	echo "bench: mpirun (openmpi-bin) or bin/gotrain is missing; the multi-worker rows stay empty" >&2
fi
mpi="mpirun --oversubscribe --allow-run-as-root --bind-to none"
have_torch=0
py=/usr/bin/python3
if $py -c 'import torch' 2>/dev/null; then
	have_torch=1
else
	echo "bench: python3-torch is not installed; PyTorch columns stay empty" >&2
fi
# PyTorch's OpenBLAS core, and the vector kernel to force when it is a
# generic one on a CPU that has AVX2 or AVX-512.
torch_blas=()
if [ "$have_torch" = 1 ]; then
	core=$($py -c 'import ctypes; l = ctypes.CDLL("libopenblas.so.0"); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())' 2>/dev/null || true)
	case "$core" in
	Haswell | Zen | SkylakeX | CooperLake | SapphireRapids | "") ;;
	*)
		if grep -qw avx512f /proc/cpuinfo; then
			torch_blas=(OPENBLAS_CORETYPE=SkylakeX)
		elif grep -qw avx2 /proc/cpuinfo; then
			torch_blas=(OPENBLAS_CORETYPE=Haswell)
		fi
		echo "bench: PyTorch's OpenBLAS runs its $core kernel on this CPU; PyTorch runs with ${torch_blas[*]}" >&2
		;;
	esac
fi
torch() { env ${torch_blas[@]+"${torch_blas[@]}"} "$@"; }
malloc=(MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000)
go test -c -o "$out/bench.test" ./bench
for round in $(seq "$rounds"); do
	echo "bench: round $round of $rounds: gotrain (go test -bench) ..."
	go test -run '^$' -bench . -benchtime 3s ./bench ./data/augment | tee -a "$out/go.txt"
	echo "bench: round $round of $rounds: gotrain with OPENBLAS_CORETYPE=Prescott ..."
	(cd bench && env OPENBLAS_CORETYPE=Prescott "../$out/bench.test" -test.run '^$' -test.bench '^Benchmark(Infer|Train|TrainMirrored2)$' -test.benchtime 3s) | tee -a "$out/go-prescott.txt"
	if [ "$have_mpi" = 1 ]; then
		echo "bench: round $round of $rounds: multi-worker (mpirun) ..."
		$mpi -np 1 bin/gotrain bench --train --strategy multiworker --threads 2 --batch 32 --seconds 3 | tee -a "$out/mpi.txt"
		$mpi -np 2 bin/gotrain bench --train --strategy multiworker --threads 1 --batch 32 --seconds 3 | tee -a "$out/mpi.txt"
	fi
	if [ "$have_torch" = 1 ]; then
		echo "bench: round $round of $rounds: PyTorch ..."
		torch $py bench/torch_bench.py --threads 1 >> "$out/torch.jsonl"
		torch $py bench/torch_bench.py --threads "$threads" >> "$out/torch.jsonl"
		torch OPENBLAS_NUM_THREADS=1 $py bench/torch_bench.py --threads "$threads" >> "$out/torch.jsonl"
		torch OPENBLAS_NUM_THREADS=1 "${malloc[@]}" $py bench/torch_bench.py --threads "$threads" >> "$out/torch.jsonl"
		torch OPENBLAS_NUM_THREADS=1 "${malloc[@]}" $py bench/torch_bench.py --ddp >> "$out/torch.jsonl" ||
			echo "bench: PyTorch DistributedDataParallel (gloo) did not run" >&2
	fi
done
echo "bench: peak memory, one workload per process ..."
for b in Infer/cnn/256 Infer/mlp/256 Train/cnn/32 Train/cnn/64 Train/mlp/64 TrainMirrored2/cnn/32; do
	top=${b%%/*} rest=${b#*/}
	(cd bench && "../$out/bench.test" -test.run '^$' -test.bench "^Benchmark$top\$/^${rest%%/*}\$/^${rest#*/}\$" -test.benchtime 20x) >> "$out/mem-go.txt"
done
if [ "$have_torch" = 1 ]; then
	for w in infer/cnn/256 infer/mlp/256 train/cnn/32 train/cnn/64 train/mlp/64; do
		torch OPENBLAS_NUM_THREADS=1 "${malloc[@]}" $py bench/torch_bench.py --threads "$threads" --min-time 1 --only "$w" >> "$out/mem-torch.jsonl"
	done
	torch OPENBLAS_NUM_THREADS=1 "${malloc[@]}" $py bench/torch_bench.py --ddp --min-time 1 >> "$out/mem-torch.jsonl" || true
fi
echo
go run ./bench/report -prescott "$out/go-prescott.txt" -mem-go "$out/mem-go.txt" -mem-torch "$out/mem-torch.jsonl" -mpi "$out/mpi.txt" \
	"$out/go.txt" "$out/torch.jsonl" | tee "$out/table.md"

#!/usr/bin/env bash
# make bench: gotrain's benchmarks and PyTorch's on the same machine in the
# same run, printed as one table with the ratios. PyTorch 1.13 (Debian's
# python3-torch) is tried in several configurations, since it is slow here
# unless tuned, and the best one is reported for each workload:
#   its default (1 thread), 2 threads, OPENBLAS_NUM_THREADS=1 (its OpenBLAS
#   pool otherwise fights its own threads), and high glibc malloc
#   thresholds (otherwise thousands of page faults a step).
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/bench
mkdir -p "$out"
threads=$(nproc)
# The machine may be shared: each side runs BENCH_ROUNDS times (default 2),
# alternating, and the report keeps each workload's best figure.
rounds=${BENCH_ROUNDS:-2}
: > "$out/go.txt"
: > "$out/torch.jsonl"
have_torch=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	have_torch=1
else
	echo "bench: python3-torch is not installed; PyTorch columns stay empty" >&2
fi
py=/usr/bin/python3
malloc="MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000"
for round in $(seq "$rounds"); do
	echo "bench: round $round of $rounds: gotrain (go test -bench) ..."
	go test -run '^$' -bench . -benchtime 3s ./bench ./data/augment | tee -a "$out/go.txt"
	if [ "$have_torch" = 1 ]; then
		echo "bench: round $round of $rounds: PyTorch ..."
		$py bench/torch_bench.py --threads 1 >> "$out/torch.jsonl"
		$py bench/torch_bench.py --threads "$threads" >> "$out/torch.jsonl"
		env OPENBLAS_NUM_THREADS=1 $py bench/torch_bench.py --threads "$threads" >> "$out/torch.jsonl"
		env OPENBLAS_NUM_THREADS=1 $malloc $py bench/torch_bench.py --threads "$threads" >> "$out/torch.jsonl"
		env OPENBLAS_NUM_THREADS=1 $malloc $py bench/torch_bench.py --ddp >> "$out/torch.jsonl" ||
			echo "bench: PyTorch DistributedDataParallel (gloo) did not run" >&2
	fi
done
echo
go run ./bench/report "$out/go.txt" "$out/torch.jsonl" | tee "$out/table.md"

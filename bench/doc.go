// Package bench holds gotrain's throughput benchmarks (bench_test.go) for
// `make bench`: inference of the seed CNN and the MLP at batch 256, Adam
// training of the CNN at batch 32 and 64 and of the MLP at batch 64, the
// mirrored strategy against single-device, and ONNX Runtime's inference
// on the same models. scripts/bench.sh runs them beside PyTorch
// (torch_bench.py) in the same run and bench/report prints the table.
//
// The models are the zoo's: "cnn" on 3x32x32 input is the seed CNN of
// shared/golden (Conv 3->32, ReLU, MaxPool, Conv 32->64, ReLU, MaxPool,
// Flatten, Dense 2304->10) and "mlp" on 1x28x28 input is its MLP
// (784-512-256-10).
package bench

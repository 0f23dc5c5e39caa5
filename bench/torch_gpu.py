#!/usr/bin/env python3
"""PyTorch's throughput on a GPU, beside gotrain's CUDA backend.

Run by scripts/gpu-check.sh on the GPU machine. The models are the seed CNN
(Conv 3->32 3x3, ReLU, MaxPool 2, Conv 32->64 3x3, ReLU, MaxPool 2, Flatten,
Linear 2304->10) on 3x32x32 input and the MLP 784-512-256-10, float32, with
cuDNN autotuning on (torch.backends.cudnn.benchmark) and TF32 off in both
cuDNN and cuBLAS, so that the arithmetic is float32 as gotrain's is.

The steps do what gotrain's do (`gotrain bench --backend cuda`):
  train: the batch comes from host memory (pageable) each step, forward,
         mean cross-entropy, backward, Adam (lr 1e-3), and the loss and the
         count of correct predictions are read back to the host;
  infer: forward of a batch already on the device, no gradients.
Throughput is samples per second over at least --min-time seconds after
three warm-up steps, the clock stopped after torch.cuda.synchronize().

Prints one JSON object per line: {"name", "samples_per_sec", "torch",
"cudnn", "device"}.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import cnn, mlp, shape_of  # noqa: E402  the same models as the CPU's table


def timed(fn, min_time):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if n % 10 == 0 or n < 10:
            torch.cuda.synchronize()
            el = time.perf_counter() - start
            if el >= min_time and n >= 5:
                return n / el


def build(name, dev):
    torch.manual_seed(0)
    return (cnn if name == "cnn" else mlp)().to(dev)


def infer(name, batch, min_time, dev):
    m = build(name, dev).eval()
    x = torch.randn(batch, *shape_of(name), device=dev)

    def step():
        with torch.no_grad():
            m(x)
    return timed(step, min_time) * batch


def train(name, batch, min_time, dev):
    m = build(name, dev)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x_host = torch.randn(batch, *shape_of(name))
    y_host = torch.randint(0, 10, (batch,))

    def step():
        x, y = x_host.to(dev), y_host.to(dev)
        opt.zero_grad(set_to_none=True)
        out = m(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        loss.item()
        (out.argmax(1) == y).sum().item()
    return timed(step, min_time) * batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--batches", default="256,1024")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("torch_gpu.py: torch sees no GPU")
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    info = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(0)}
    for mode in ("train", "infer"):
        for name in ("cnn", "mlp"):
            for b in (int(s) for s in a.batches.split(",")):
                key = "%s/%s/%d" % (mode, name, b)
                if a.only and a.only not in key:
                    continue
                fn = train if mode == "train" else infer
                print(json.dumps(dict(name=key, samples_per_sec=fn(name, b, a.min_time, dev), **info)), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch reference throughput for gotrain's benchmark table.

Measures, on the same machine and in the same run as gotrain's benchmarks,
the models of shared/golden: the seed CNN (Conv 3->32 3x3, ReLU, MaxPool 2,
Conv 32->64 3x3, ReLU, MaxPool 2, Flatten, Linear 2304->10) on 3x32x32 input
and the MLP 784-512-256-10. Inference at batch 256 (no_grad); training with
Adam and mean cross-entropy at the given batch sizes; and, with --ddp,
DistributedDataParallel with 2 processes on the gloo backend.

Prints one JSON object per line: {"name", "samples_per_sec", "threads", "env",
"peak_rss_mb"}. peak_rss_mb is getrusage's ru_maxrss of the process so far
(with --ddp, the sum over the parent and its two workers), so it is one
workload's peak only when --only runs that workload alone, as
scripts/bench.sh's memory pass does. The environment (OPENBLAS_NUM_THREADS,
OPENBLAS_CORETYPE, malloc thresholds) is set by the caller, since it must be
in place before the process starts.
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2304, 10))


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def shape_of(name):
    return (3, 32, 32) if name == "cnn" else (784,)


def timed(fn, min_time):
    for _ in range(3):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - start
        if el >= min_time and n >= 5:
            return n / el


def infer(name, batch, min_time):
    torch.manual_seed(0)
    m = (cnn if name == "cnn" else mlp)().eval()
    x = torch.randn(batch, *shape_of(name))
    with torch.no_grad():
        steps = timed(lambda: m(x), min_time)
    return steps * batch


def train(name, batch, min_time):
    torch.manual_seed(0)
    m = (cnn if name == "cnn" else mlp)()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.randn(batch, *shape_of(name))
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x), y).backward()
        opt.step()
    return timed(step, min_time) * batch


def ddp_worker(rank, world, name, batch, min_time, port, q):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    m = DDP((cnn if name == "cnn" else mlp)())
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    local = batch // world
    x = torch.randn(local, *shape_of(name))
    y = torch.randint(0, 10, (local,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x), y).backward()
        opt.step()
    # Every rank runs the same number of steps: time a fixed count.
    for _ in range(3):
        step()
    dist.barrier()
    n = max(10, int(min_time * 40))
    start = time.perf_counter()
    for _ in range(n):
        step()
    dist.barrier()
    el = time.perf_counter() - start
    if rank == 0:
        q.put(n * batch / el)
    dist.destroy_process_group()
    q.put(("rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def ddp(name, batch, min_time):
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    port = 29500 + os.getpid() % 1000
    procs = [ctx.Process(target=ddp_worker, args=(r, 2, name, batch, min_time, port, q)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    rate, rss = None, 0
    while not q.empty():
        v = q.get()
        if isinstance(v, tuple):
            rss += v[1]
        else:
            rate = v
    return rate, rss


def peak_rss_mb(children_kb=0):
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + children_kb) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--ddp", action="store_true")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    env = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if k in os.environ}
    jobs = [
        ("infer/cnn/256", lambda: infer("cnn", 256, a.min_time)),
        ("infer/mlp/256", lambda: infer("mlp", 256, a.min_time)),
        ("train/cnn/32", lambda: train("cnn", 32, a.min_time)),
        ("train/cnn/64", lambda: train("cnn", 64, a.min_time)),
        ("train/mlp/64", lambda: train("mlp", 64, a.min_time)),
    ]
    if a.ddp:
        jobs = [("ddp2/cnn/32", lambda: ddp("cnn", 32, a.min_time))]
    for name, fn in jobs:
        if a.only and a.only not in name:
            continue
        rate, children = fn(), 0
        if isinstance(rate, tuple):
            rate, children = rate
        print(json.dumps({"name": name, "samples_per_sec": rate, "threads": a.threads, "env": env,
                          "peak_rss_mb": peak_rss_mb(children)}), flush=True)


if __name__ == "__main__":
    main()

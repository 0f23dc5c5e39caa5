#!/usr/bin/python3
"""Generate PyTorch golden data for gotrain's training tests.

Run with Debian's interpreter (python3-torch, python3-onnx):

    /usr/bin/python3 scripts/make_goldens.py [OUTDIR [SEEDDIR]]

It writes two sets: the seed models' goldens (SEEDDIR, default
testdata/golden at the module root, read by the tests of several packages)
and three further architectures' (OUTDIR, default train/testdata/goldens).

The seed models are the seed CNN's and MLP's layer structures at widths
that keep the files small (a few tens of KB): "cnn" is Conv(3->8, k3) +
ReLU + MaxPool 2, Conv(8->16, k3) + ReLU + MaxPool 2, Flatten, Gemm(64->10)
on 3x16x16 inputs; "mlp" is Gemm(64->32) + ReLU, Gemm(32->16) + ReLU,
Gemm(16->10). For each, SEEDDIR/<name>/ holds the files of the golden set
that the project's shared data describes (shared/golden/README.md), in the
same layout, so one loader reads both:

  <name>.onnx         the inference model (torch.onnx.export, opset 17)
  x.npy, y.npy        a batch of 8 (x ~ N(0,1), int64 labels in [0, 10))
  loss.npy            mean cross-entropy at the initial weights
  init/<p>.npy        every parameter at the start (== the model's)
  grad/<p>.npy        d loss / d parameter at the start
  loss_<opt>.npy      the loss before each of 5 steps of optimizer <opt>
  <opt>_5/<p>.npy     the parameters after 5 steps on the same batch
  adam_1/<p>.npy      the parameters after Adam's first step
  manifest.json       the optimizers' settings and the files' shapes

with <opt> one of adam (Adam, lr 1e-3), adamw (AdamW, lr 1e-3, weight
decay 0.01) and sgdm (SGD, lr 0.01, momentum 0.9, coupled L2 weight decay
5e-4), every parameter decayed, as in the shared set.

For each further architecture it writes OUTDIR/<arch>/:

  model.onnx          the inference model (torch.onnx.export, opset 17)
  manifest.json       loss, optimizer settings, and the ONNX initializer ->
                      file map (ONNX names such as "onnx::MatMul_12" are not
                      file names; torch's parameter names differ from them
                      where the exporter folded a transpose)
  x.npy, y.npy        the batch (the same batch at every step)
  loss.npy            the loss at the initial weights
  init/<f>.npy        every initializer at the start (== model.onnx's)
  grad/<f>.npy        d loss / d parameter at the start, in the ONNX layout
  <opt>_loss.npy      the loss before each of the 3 steps of optimizer <opt>
  <opt>_3/<f>.npy     parameters and BatchNorm running statistics after 3
                      steps of <opt> on the same batch
  mirrored2_*         (BatchNorm nets) the same for 2 data-parallel replicas
                      that each normalise their half of the batch with its
                      own statistics and keep their own running statistics
                      (averaged at the end), as per-replica BatchNorm does.

Optimizers (torch.optim semantics): sgdm is SGD(lr=0.05, momentum=0.9,
weight_decay=5e-4) (coupled L2, applied to every parameter); adamw is
AdamW(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01).

BatchNorm trains on batch statistics and updates its running statistics
with PyTorch's momentum 0.1, which ONNX's BatchNormalization states as
momentum 0.9 (running = 0.9*running + 0.1*batch, unbiased batch variance).

Dropout: PyTorch and gotrain draw different masks, so no golden can compare
an active dropout. The dropout net keeps a Dropout node in its ONNX graph
(gotrain rewrites it into its training op, with seed and sample offsets)
with ratio 0, which makes the training step deterministic and equal to
evaluation-mode dropout in PyTorch.

Everything runs in float32 on one thread with fixed seeds, so reruns on
one machine give the same files; another CPU's kernels round differently
(regenerating on an AMD EPYC moved values by up to 7e-8, far inside the
tests' tolerances).
"""

import json
import os
import re
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17
STEPS = 3
OPTIMIZERS = {
    "sgdm": {"name": "momentum", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "decay_mode": "l2"},
    "adamw": {"name": "adamw", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01,
              "decay_mode": "decoupled"},
}


def make_optimizer(key, params):
    c = OPTIMIZERS[key]
    if key == "sgdm":
        return torch.optim.SGD(params, lr=c["lr"], momentum=c["momentum"], weight_decay=c["weight_decay"])
    return torch.optim.AdamW(params, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"],
                             weight_decay=c["weight_decay"])


class ResNetish(nn.Module):
    """Conv+BN+ReLU stem, one residual block, average pooling, Gemm head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = F.relu(self.bn0(self.stem(x)))
        r = F.relu(self.bn1(self.conv1(h)))
        r = self.bn2(self.conv2(r))
        h = F.relu(h + r)
        h = torch.flatten(self.pool(h), 1)
        return self.fc(h)


class DropoutNet(nn.Module):
    """Sequence features: Linear (MatMul) + Tanh, Dropout, Linear + GELU
    gated by a Sigmoid, mean over positions, a MatMul head and a final
    Sigmoid (multi-label probabilities; the loss works on its input)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(12, 16)
        self.drop = nn.Dropout(0.0)
        self.mid = nn.Linear(16, 16)
        self.head_w = nn.Parameter(torch.randn(16, 5) * 0.3)
        self.head_b = nn.Parameter(torch.zeros(5))

    def forward(self, x):
        h = self.drop(torch.tanh(self.inp(x)))
        g = F.gelu(self.mid(h))
        h = g * torch.sigmoid(g)
        h = h.mean(dim=1)
        # The loss is taken on the Sigmoid's input, as gotrain's bce unwraps
        # a final Sigmoid (numerically stable, same value).
        self.logits = torch.matmul(h, self.head_w) + self.head_b
        return torch.sigmoid(self.logits)


class LayerNormMLP(nn.Module):
    """Linear -> LayerNorm -> ReLU -> Linear -> LayerNorm -> GELU -> Linear."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.ln1 = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 24)
        self.ln2 = nn.LayerNorm(24)
        self.fc3 = nn.Linear(24, 4)

    def forward(self, x):
        h = F.relu(self.ln1(self.fc1(x)))
        h = F.gelu(self.ln2(self.fc2(h)))
        return self.fc3(h)


def forward_loss(arch, model, x, y):
    out = model(x)
    if arch["loss"] == "bce":
        return F.binary_cross_entropy_with_logits(model.logits, y)
    return F.cross_entropy(out, y, label_smoothing=arch.get("label_smoothing", 0.0))


def file_stem(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def export(model, x, path, training):
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.PRESERVE
    model.train(training)
    torch.onnx.export(model, (x,), path, opset_version=OPSET, training=mode, do_constant_folding=True,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    m = onnx.load(path)
    g = m.graph
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    have = {t.name for t in g.initializer}
    for n in g.node:
        if n.op_type == "BatchNormalization":
            # torch 1.13 drops the running statistics of an eval-mode export:
            # put them back as initializers under their state_dict names.
            for s in n.input[3:5]:
                if s not in have:
                    g.initializer.append(onnx.numpy_helper.from_array(state[s], s))
                    have.add(s)
            del n.output[1:]
            for a in list(n.attribute):
                if a.name == "training_mode":
                    n.attribute.remove(a)
        if n.op_type == "Dropout" and len(n.input) > 2:
            # Keep the ratio, drop the training_mode flag: an inference model.
            del n.input[2:]
            del n.output[1:]
    onnx.checker.check_model(m)
    onnx.save(m, path)
    model.train(False)
    return m


def param_map(m, model):
    """Maps each ONNX initializer to (torch name, transposed) for trainable
    parameters and buffers. The exporter keeps state_dict names except where
    it folded a weight's transpose into a new initializer."""
    named = dict(model.named_parameters())
    named.update({k: v for k, v in model.named_buffers() if not k.endswith("num_batches_tracked")})
    out = {}
    for t in m.graph.initializer:
        a = onnx.numpy_helper.to_array(t)
        if t.name in named:
            out[t.name] = (t.name, False)
            continue
        hits = [k for k, v in named.items() if v.dim() == 2 and tuple(v.shape[::-1]) == a.shape
                and np.array_equal(v.detach().numpy().T, a)]
        if len(hits) == 1:
            out[t.name] = (hits[0], True)
        elif a.dtype.kind == "f":
            raise SystemExit("initializer %s matches %d torch tensors" % (t.name, len(hits)))
    return out


def onnx_layout(tensor, transposed):
    a = tensor.detach().numpy().astype(np.float32)
    return np.ascontiguousarray(a.T) if transposed else a


def save(path, a):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, a)


def train_steps(arch, model, x, y, key, replicas):
    """STEPS steps of optimizer `key` on (x, y); returns the losses before
    each step and the final state dict. With replicas > 1 every replica
    runs its slice of the batch with its own BatchNorm buffers and the
    gradient is the mean of the replicas' gradients."""
    opt = make_optimizer(key, list(model.parameters()))
    buffers = {k: v for k, v in model.named_buffers()}
    rep_bufs = [{k: v.clone() for k, v in buffers.items()} for _ in range(replicas)]
    xs, ys = torch.chunk(x, replicas), torch.chunk(y, replicas)
    losses = []
    model.train()
    for _ in range(STEPS):
        opt.zero_grad()
        total = 0
        for r in range(replicas):
            for k, v in rep_bufs[r].items():
                buffers[k].copy_(v)
            loss = forward_loss(arch, model, xs[r], ys[r]) * (xs[r].shape[0] / x.shape[0])
            loss.backward()
            total += loss.item()
            for k in rep_bufs[r]:
                rep_bufs[r][k] = buffers[k].clone()
        losses.append(total)
        opt.step()
    with torch.no_grad():
        for k in buffers:
            if k.endswith("num_batches_tracked"):
                continue
            buffers[k].copy_(sum(b[k] for b in rep_bufs) / replicas)
    return np.array(losses, dtype=np.float32)


ARCHS = [
    {"name": "resnet_bn", "make": ResNetish, "x": (8, 3, 8, 8), "classes": 10, "loss": "cross_entropy",
     "train_export": False, "mirrored": True},
    {"name": "dropout_matmul", "make": DropoutNet, "x": (8, 6, 12), "classes": 5, "loss": "bce",
     "train_export": True, "mirrored": False},
    {"name": "layernorm_mlp", "make": LayerNormMLP, "x": (8, 20), "classes": 4, "loss": "cross_entropy",
     "label_smoothing": 0.1, "train_export": False, "mirrored": False},
]


def generate(arch, outdir):
    torch.manual_seed(1234)
    model = arch["make"]()
    if arch["name"] == "resnet_bn":
        # Non-trivial BatchNorm affine parameters and running statistics, so
        # that a mistake in any of them shows.
        with torch.no_grad():
            for bn in (model.bn0, model.bn1, model.bn2):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
                bn.running_mean.uniform_(-0.1, 0.1)
                bn.running_var.uniform_(0.8, 1.2)
    gen = torch.Generator().manual_seed(42)
    x = torch.randn(*arch["x"], generator=gen)
    n = arch["x"][0]
    if arch["loss"] == "bce":
        y = (torch.rand(n, arch["classes"], generator=gen) > 0.5).float()
    else:
        y = torch.randint(0, arch["classes"], (n,), generator=gen)
    d = os.path.join(outdir, arch["name"])
    os.makedirs(d, exist_ok=True)
    m = export(model, x, os.path.join(d, "model.onnx"), arch["train_export"])
    pmap = param_map(m, model)
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    files = {name: file_stem(name) for name in pmap}
    assert len(set(files.values())) == len(files), "file names collide"

    save(os.path.join(d, "x.npy"), x.numpy())
    save(os.path.join(d, "y.npy"), y.numpy())
    tensors = dict(model.named_parameters())
    tensors.update(dict(model.named_buffers()))
    for oname, (tname, tr) in pmap.items():
        save(os.path.join(d, "init", files[oname] + ".npy"), onnx_layout(tensors[tname], tr))

    # Loss and gradients at the start, BatchNorm on batch statistics.
    model.train()
    model.zero_grad()
    loss = forward_loss(arch, model, x, y)
    loss.backward()
    save(os.path.join(d, "loss.npy"), np.array(loss.item(), dtype=np.float32))
    params = dict(model.named_parameters())
    for oname, (tname, tr) in pmap.items():
        if tname in params:
            save(os.path.join(d, "grad", files[oname] + ".npy"), onnx_layout(params[tname].grad, tr))

    runs = [("", 1)]
    if arch["mirrored"]:
        runs.append(("mirrored2_", 2))
    for prefix, replicas in runs:
        if replicas > 1:
            # The replicas' mean gradient at the start.
            model.load_state_dict(init)
            model.zero_grad()
            buffers = dict(model.named_buffers())
            keep = {k: v.clone() for k, v in buffers.items()}
            total = 0.0
            for xr, yr in zip(torch.chunk(x, replicas), torch.chunk(y, replicas)):
                for k, v in keep.items():
                    buffers[k].copy_(v)
                lr_ = forward_loss(arch, model, xr, yr) * (xr.shape[0] / n)
                lr_.backward()
                total += lr_.item()
            save(os.path.join(d, prefix + "loss.npy"), np.array(total, dtype=np.float32))
            for oname, (tname, tr) in pmap.items():
                if tname in params:
                    save(os.path.join(d, prefix + "grad", files[oname] + ".npy"), onnx_layout(params[tname].grad, tr))
        for key in OPTIMIZERS:
            model.load_state_dict(init)
            losses = train_steps(arch, model, x, y, key, replicas)
            save(os.path.join(d, "%s%s_loss.npy" % (prefix, key)), losses)
            tensors = dict(model.named_parameters())
            tensors.update(dict(model.named_buffers()))
            for oname, (tname, tr) in pmap.items():
                save(os.path.join(d, "%s%s_%d" % (prefix, key, STEPS), files[oname] + ".npy"),
                     onnx_layout(tensors[tname], tr))
    model.load_state_dict(init)

    manifest = {
        "arch": arch["name"],
        "doc": (arch["make"].__doc__ or "").strip(),
        "loss": arch["loss"],
        "label_smoothing": arch.get("label_smoothing", 0.0),
        "steps": STEPS,
        "optimizers": OPTIMIZERS,
        "mirrored_goldens": arch["mirrored"],
        "files": files,
        "buffers": sorted(o for o, (t, _) in pmap.items() if t not in params),
        "torch": torch.__version__,
        "onnx_opset": OPSET,
    }
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print("%s: loss %.6f, %d initializers" % (arch["name"], loss.item(), len(pmap)))


class SeedCNN(nn.Module):
    """The seed CNN's layers at widths 8 and 16, on 3x16x16 inputs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.fc(torch.flatten(h, 1))


class SeedMLP(nn.Module):
    """The seed MLP's layers at widths 64-32-16-10."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


SEED_STEPS = 5
SEED_OPTIMIZERS = {
    "adam": ("torch.optim.Adam(lr=1e-3)", lambda p: torch.optim.Adam(p, lr=1e-3)),
    "adamw": ("torch.optim.AdamW(lr=1e-3, weight_decay=0.01)", lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01)),
    "sgdm": ("torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=5e-4)",
             lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=5e-4)),
}
SEEDS = [("cnn", SeedCNN, (8, 3, 16, 16)), ("mlp", SeedMLP, (8, 64))]


def generate_seed(name, make, x_shape, outdir):
    torch.manual_seed(1234)
    model = make()
    gen = torch.Generator().manual_seed(42)
    x = torch.randn(*x_shape, generator=gen)
    y = torch.randint(0, 10, (x_shape[0],), generator=gen)
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    m = export(model, x, os.path.join(d, name + ".onnx"), False)
    pmap = param_map(m, model)
    params = dict(model.named_parameters())
    files = {}

    def write(sub, oname, t, tr):
        f = file_stem(oname) + ".npy"
        files[sub + "/" + f] = list(t.shape)
        save(os.path.join(d, sub, f), onnx_layout(t, tr))

    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save(os.path.join(d, "x.npy"), x.numpy())
    save(os.path.join(d, "y.npy"), y.numpy())
    for oname, (tname, tr) in pmap.items():
        write("init", oname, params[tname], tr)
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    save(os.path.join(d, "loss.npy"), np.array(loss.item(), dtype=np.float32))
    for oname, (tname, tr) in pmap.items():
        write("grad", oname, params[tname].grad, tr)
    for key, (doc, make_opt) in SEED_OPTIMIZERS.items():
        model.load_state_dict(init)
        opt = make_opt(list(model.parameters()))
        losses = []
        for step in range(SEED_STEPS):
            opt.zero_grad()
            l = F.cross_entropy(model(x), y)
            l.backward()
            losses.append(l.item())
            opt.step()
            if key == "adam" and step == 0:
                params = dict(model.named_parameters())
                for oname, (tname, tr) in pmap.items():
                    write("adam_1", oname, params[tname], tr)
        save(os.path.join(d, "loss_%s.npy" % key), np.array(losses, dtype=np.float32))
        params = dict(model.named_parameters())
        for oname, (tname, tr) in pmap.items():
            write("%s_%d" % (key, SEED_STEPS), oname, params[tname], tr)
    model.load_state_dict(init)
    manifest = {
        "model": name + ".onnx",
        "doc": (make.__doc__ or "").strip(),
        "loss": "mean cross-entropy (torch.nn.functional.cross_entropy)",
        "steps": SEED_STEPS,
        "optimizers": {k: v[0] for k, v in SEED_OPTIMIZERS.items()},
        "files": files,
        "torch": torch.__version__,
        "onnx_opset": OPSET,
    }
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print("%s: loss %.6f, %d parameters" % (name, loss.item(), len(pmap)))


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "train", "testdata", "goldens")
    seeddir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "testdata", "golden")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for name, make, x_shape in SEEDS:
        generate_seed(name, make, x_shape, seeddir)
    for arch in ARCHS:
        generate(arch, outdir)


if __name__ == "__main__":
    main()

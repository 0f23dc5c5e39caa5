"""The PyTorch side of gotrain's small-data experiment (make experiment).

It reads what `experiment run` wrote to its output folder -- settings.json,
the training, validation and test images as NPY, and each seed's initial
weights -- trains the same CNN in the same five configurations with
PyTorch, and writes torch.json in the format of gotrain.json, which
`experiment report` reads.

What is the same in both frameworks: the images (the very same arrays), the
initial weights of each seed, the optimizer (Adam; L2 weight decay on the
weights, not the biases), the batch size and epochs, the augmentation's
ranges, and early stopping's rule (Keras's: stop after `patience` epochs
without a lower val_loss, then restore the best epoch's weights). What is
not: the data order and the augmentation draws, which each framework makes
from the seed with its own generator.

Usage: /usr/bin/python3 scripts/experiment_torch.py --dir out/experiment
"""

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    """The seed CNN: gotrain's models "cnn" for 1x28x28 inputs, 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc = nn.Linear(64 * 5 * 5, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


SETUPS = {  # name: (augment, weight decay, early stopping)
    "plain": (False, False, False),
    "augment": (True, False, False),
    "decay": (False, True, False),
    "early": (False, False, True),
    "all": (True, True, True),
}


def fail(msg):
    print("experiment_torch: " + msg, file=sys.stderr)
    sys.exit(1)


def load_npy(path, dtype, shape_tail):
    try:
        a = np.load(path)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e} (run 'experiment run' first)")
    if a.dtype != dtype or tuple(a.shape[1:]) != shape_tail:
        fail(f"{path}: {a.dtype}{list(a.shape)}: expected {np.dtype(dtype)} [N, {', '.join(map(str, shape_tail))}]")
    return torch.from_numpy(a)


def load_split(d, name):
    x = load_npy(os.path.join(d, name + "_x.npy"), np.float32, (1, 28, 28))
    y = load_npy(os.path.join(d, name + "_y.npy"), np.int64, ())
    if len(x) != len(y):
        fail(f"{name}: {len(x)} images but {len(y)} labels")
    return x, y


def load_init(model, d, seed):
    """Loads the seed's initial weights exported by gotrain."""
    folder = os.path.join(d, "init", f"seed{seed}")
    state = model.state_dict()
    for name, t in state.items():
        path = os.path.join(folder, name + ".npy")
        try:
            a = np.load(path)
        except (OSError, ValueError) as e:
            fail(f"initial weights: {path}: {e}")
        if tuple(a.shape) != tuple(t.shape):
            fail(f"initial weights: {path}: shape {list(a.shape)}, expected {list(t.shape)}")
        state[name] = torch.from_numpy(a.astype(np.float32))
    model.load_state_dict(state)


def augment(x, gen, rotation, shift, zoom):
    """Warps each image of the batch by its own random affine map, drawn as
    gotrain's augment stage draws it: an angle in [-rotation, rotation]
    degrees, a shift of up to shift*size pixels on each axis, and a zoom
    factor in [1-zoom, 1+zoom] per axis."""
    n, _, h, w = x.shape

    def u():
        return torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1

    th = u() * rotation
    sy, sx = u() * shift * h, u() * shift * w
    zy, zx = 1 + u() * zoom, 1 + u() * zoom
    return warp(x, th, sy, sx, zy, zx)


def warp(x, degrees, sy, sx, zy, zx):
    """Applies gotrain's affine map (data/augment) to each image: on (row,
    col) coordinates, source = R*Z*(out - centre) + centre - R*shift, with R
    the counter-clockwise rotation, Z = diag(zy, zx) and the shift (sy, sx)
    in pixels (down, right); bilinear resampling; an output pixel whose
    source lies outside the image is zero (gotrain's constant fill, which
    does not blend the edge pixels with the outside as grid_sample does)."""
    n, _, h, w = x.shape
    th = degrees * math.pi / 180
    cs, sn = torch.cos(th), torch.sin(th)
    l00, l01, l10, l11 = cs * zy, sn * zx, -sn * zy, cs * zx
    ty, tx = -(cs * sy + sn * sx), -(-sn * sy + cs * sx)
    oy, ox = (h - 1) / 2, (w - 1) / 2
    # affine_grid maps normalised output (x, y) to normalised input (x, y);
    # with align_corners=True, pixel p sits at p/o - 1 on an axis of centre o.
    theta = torch.stack([
        torch.stack([l11, l10 * oy / ox, tx / ox], 1),
        torch.stack([l01 * ox / oy, l00, ty / oy], 1),
    ], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    inside = (grid.abs() <= 1 + 1e-6).all(-1).unsqueeze(1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True) * inside


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch):
        out = model(x[i:i + batch])
        loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
        correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return loss / len(x), correct / len(x)


def run_one(name, seed, st, d, train, val, test):
    aug, decay, early = SETUPS[name]
    began = time.time()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = CNN()
    load_init(model, d, seed)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    wd = st["weight_decay"] if decay else 0.0
    opt = torch.optim.Adam([{"params": weights, "weight_decay": wd}, {"params": biases, "weight_decay": 0.0}], lr=st["lr"])
    (xt, yt), (xv, yv), (xs, ys) = train, val, test
    bs, n = st["batch_size"], len(xt)
    best, best_epoch, wait, best_state = math.inf, -1, 0, None
    history = []
    epochs = 0
    for epoch in range(st["epochs"]):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = xt[idx], yt[idx]
            if aug:
                xb = augment(xb, gen, st["rotation_degrees"], st["shift_fraction"], st["zoom"])
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epochs = epoch + 1
        vl, _ = evaluate(model, xv, yv)
        history.append(vl)
        if not early:
            continue
        # Keras's rule, as gotrain's checkpoint.EarlyStopping applies it.
        wait += 1
        if vl < best:
            best, best_epoch, wait = vl, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        elif wait >= st["patience"] and epoch > 0:
            break
    if early and best_state is not None and best_epoch != epochs - 1:
        model.load_state_dict(best_state)
    train_loss, train_acc = evaluate(model, xt, yt)
    test_loss, test_acc = evaluate(model, xs, ys)
    best_val = min(range(len(history)), key=lambda i: history[i]) + 1
    return {"config": name, "seed": seed, "test_accuracy": test_acc, "test_loss": test_loss,
            "train_accuracy": train_acc, "train_loss": train_loss, "epochs": epochs,
            "best_val_epoch": best_val, "seconds": time.time() - began}


def write_json(path, obj):
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="out/experiment", help="the folder 'experiment run' wrote")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the settings' threads)")
    args = ap.parse_args()
    try:
        with open(os.path.join(args.dir, "settings.json")) as f:
            st = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"settings: {e} (run 'experiment run' first)")
    for k in ("dataset", "epochs", "batch_size", "lr", "weight_decay", "rotation_degrees", "shift_fraction",
              "zoom", "patience", "seeds", "configs", "threads"):
        if k not in st:
            fail(f"{args.dir}/settings.json: no key {k!r}")
    if st.get("optimizer") != "adam" or st.get("decay_mode") != "l2" or st.get("monitor") != "val_loss":
        fail("settings.json: this script trains with Adam, L2 decay and early stopping on val_loss only")
    for c in st["configs"]:
        if c not in SETUPS:
            fail(f"settings.json: unknown configuration {c!r} (have {', '.join(SETUPS)})")
    torch.set_num_threads(args.threads or st["threads"])
    train, val, test = (load_split(args.dir, s) for s in ("train", "val", "test"))
    res = {"framework": "PyTorch", "version": "PyTorch " + torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "settings": st, "runs": [],
           "machine": f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads"}
    began = time.time()
    for name in st["configs"]:
        for seed in st["seeds"]:
            r = run_one(name, seed, st, args.dir, train, val, test)
            res["runs"].append(r)
            print(f"PyTorch  {name:<8} seed {seed}: test {100 * r['test_accuracy']:.2f}%  train {100 * r['train_accuracy']:.2f}%  "
                  f"gap {100 * (r['train_accuracy'] - r['test_accuracy']):5.2f}  epochs {r['epochs']:2d} "
                  f"(best val epoch {r['best_val_epoch']:2d})  {r['seconds']:.0f}s", flush=True)
    path = os.path.join(args.dir, "torch.json")
    write_json(path, res)
    print(f"PyTorch: {len(res['runs'])} runs in {time.time() - began:.0f}s; results in {path}")


if __name__ == "__main__":
    main()

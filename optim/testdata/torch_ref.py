"""Reference trajectories of torch.optim for optim's tests.

Run with /usr/bin/python3 (Debian's python3-torch). Prints one JSON object:
for each case, the initial parameters, the gradient fed at each of STEPS
steps, and the parameters and optimizer state after the last step. Each
case's optimizer settings are mirrored by the Go test of the same name
(torch_test.go). Exits with status 3 when torch cannot be imported.
"""
import json
import sys

try:
    import torch
except ImportError:
    sys.exit(3)

STEPS = 10
torch.set_num_threads(1)


def make_params(gen):
    w = torch.randn(3, 4, generator=gen)
    b = torch.randn(4, generator=gen)
    return {"w": w, "b": b}


def grads(gen, params, step):
    # Gradients of growing and shrinking size, so clipping engages on some
    # steps and not others.
    scale = 0.5 + 1.5 * ((step * 7) % 5) / 4
    return {k: scale * torch.randn(v.shape, generator=gen) for k, v in params.items()}


# name -> (optimizer factory, clip_norm, clip_value, state slot map)
CASES = {
    "sgd_nesterov": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                     0, 0, {"momentum": "momentum_buffer"}),
    "sgd_dampening": (lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.25, weight_decay=1e-2),
                      0, 0, {"momentum": "momentum_buffer"}),
    "rmsprop_centered_momentum": (lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, momentum=0.5,
                                                                 centered=True, weight_decay=0.01),
                                  0, 0, {"square_avg": "square_avg", "momentum": "momentum_buffer", "grad_avg": "grad_avg"}),
    "adagrad": (lambda ps: torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                               initial_accumulator_value=0.1, eps=1e-10),
                0, 0, {"sum": "sum"}),
    "adamw_clip_norm": (lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1),
                        3.0, 0, {"m": "exp_avg", "v": "exp_avg_sq"}),
    "adam_l2_clip_value": (lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.05),
                           0, 0.8, {"m": "exp_avg", "v": "exp_avg_sq"}),
}


def run(name, factory, clip_norm, clip_value, slots):
    gen = torch.Generator().manual_seed(1234)
    params = {k: v.clone().requires_grad_(True) for k, v in make_params(gen).items()}
    out = {"init": {k: v.detach().flatten().tolist() for k, v in params.items()},
           "shapes": {k: list(v.shape) for k, v in params.items()}, "grads": []}
    opt = factory(list(params.values()))
    for step in range(1, STEPS + 1):
        g = grads(gen, params, step)
        out["grads"].append({k: v.flatten().tolist() for k, v in g.items()})
        for k, p in params.items():
            p.grad = g[k].clone()
        if clip_norm:
            torch.nn.utils.clip_grad_norm_(list(params.values()), clip_norm)
        if clip_value:
            torch.nn.utils.clip_grad_value_(list(params.values()), clip_value)
        opt.step()
    out["final"] = {k: v.detach().flatten().tolist() for k, v in params.items()}
    out["state"] = {}
    for k, p in params.items():
        st = opt.state[p]
        for slot, tname in slots.items():
            out["state"][k + ":" + slot] = st[tname].flatten().tolist()
    return out


print(json.dumps({"steps": STEPS, "torch": torch.__version__,
                  "cases": {name: run(name, *spec) for name, spec in CASES.items()}}))

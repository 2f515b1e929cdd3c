#!/usr/bin/python3
"""Train the Set Transformer for amortized clustering (Lee et al. 2019, 5.3).

Each step draws a batch of 10 sets; all sets of a batch have the same size N,
drawn uniformly from [100, 500]. Each set comes from its own mixture of 4
isotropic Gaussians in 2-D (see common.sample_sets). The loss is the mean
per-point negative log-likelihood of the mixture predicted by the model.

    /usr/bin/python3 examples/clustering/train.py            # defaults below

Writes examples/clustering/weights.safetensors (F16, keys = state_dict keys).
"""

import argparse
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import st_io  # noqa: E402
from common import N_MAX, N_MIN, point_log_likelihood, sample_sets, split_output  # noqa: E402
from model import SetTransformer  # noqa: E402

CONFIG = dict(dim_input=2, num_outputs=4, dim_output=5, num_inds=32,
              dim_hidden=128, num_heads=4, ln=False)

METADATA = {"kind": "settransformer-model", "dim_in": "2", "dim": "128",
            "heads": "4", "num_inds": "32", "ln": "false", "num_outputs": "4",
            "dim_output": "5"}


def lr_at(step, steps, lr, decay_from, lr_min):
    """Constant lr until decay_from*steps, then cosine decay to lr_min."""
    start = int(decay_from * steps)
    if step < start:
        return lr
    t = (step - start) / max(1, steps - start)
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t))


def blas_in_use():
    """Which BLAS library the process has mapped (for the log)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line}
        return ", ".join(sorted(libs)) or "unknown"
    except OSError:
        return "unknown"


def save_weights(model, path):
    tensors = {k: v.detach().cpu().numpy().astype(np.float16)
               for k, v in model.state_dict().items()}
    st_io.write(path, tensors, METADATA)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=25000)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-min", type=float, default=2e-5)
    p.add_argument("--decay-from", type=float, default=0.5,
                   help="fraction of the steps after which lr follows a cosine to --lr-min")
    p.add_argument("--clip", type=float, default=10.0, help="gradient-norm clip")
    p.add_argument("--seed", type=int, default=20190601)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=os.path.join(HERE, "weights.safetensors"))
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = SetTransformer(**CONFIG)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    data_gen = torch.Generator().manual_seed(args.seed + 1)
    size_rng = np.random.default_rng(args.seed + 2)

    print("config %s" % CONFIG)
    print("blas %s" % blas_in_use())
    print("args %s" % vars(args), flush=True)
    t0 = time.time()
    run_loss, run_n = 0.0, 0
    for step in range(1, args.steps + 1):
        lr = lr_at(step - 1, args.steps, args.lr, args.decay_from, args.lr_min)
        for g in opt.param_groups:
            g["lr"] = lr
        n = int(size_rng.integers(N_MIN, N_MAX + 1))
        x, _, _, _ = sample_sets(args.batch, n, data_gen)
        log_pi, mu, sigma = split_output(model(x))
        loss = -point_log_likelihood(x, log_pi, mu, sigma).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        run_loss += loss.item()
        run_n += 1
        if step % args.log_every == 0 or step == args.steps:
            el = time.time() - t0
            print("step %6d  lr %.2e  train_nll %.4f  elapsed %7.1fs  (%.3fs/step)"
                  % (step, lr, run_loss / run_n, el, el / step), flush=True)
            run_loss, run_n = 0.0, 0
    el = time.time() - t0
    save_weights(model, args.out)
    print("done: %d steps in %.1fs (%.1f min); wrote %s (%d bytes)"
          % (args.steps, el, el / 60, args.out, os.path.getsize(args.out)), flush=True)


if __name__ == "__main__":
    main()

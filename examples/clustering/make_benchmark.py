#!/usr/bin/python3
"""Make the fixed amortized-clustering benchmark.

100 sets of N=300 points drawn exactly like the training data (see
common.sample_sets) with its own seed, stored with the true mixture parameters:

    x      [100, 300, 2] F32
    pi     [100, 4]      F32
    mu     [100, 4, 2]   F32
    sigma  [100, 4, 2]   F32

    /usr/bin/python3 examples/clustering/make_benchmark.py
"""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import st_io  # noqa: E402
from common import sample_sets  # noqa: E402

SEED = 777001
SETS = 100
N = 300


def main():
    gen = torch.Generator().manual_seed(SEED)
    x, pi, mu, sigma = sample_sets(SETS, N, gen, dtype=torch.float64)
    tensors = {k: v.numpy().astype("<f4") for k, v in
               (("x", x), ("pi", pi), ("mu", mu), ("sigma", sigma))}
    meta = {"kind": "gmm-benchmark", "seed": str(SEED), "sets": str(SETS),
            "n": str(N), "k": "4", "std": "0.3", "mean_range": "[-4, 4]",
            "pi_prior": "Dirichlet(1,1,1,1)"}
    path = os.path.join(HERE, "benchmark.safetensors")
    st_io.write(path, tensors, meta)
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


if __name__ == "__main__":
    main()

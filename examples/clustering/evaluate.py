#!/usr/bin/python3
"""Evaluate weights.safetensors on benchmark.safetensors; write results.json.

The F16 weights are converted to float32 (as the Go engine loads them), loaded
into the model, and the model is run in float64 (model.double()). The oracle
uses the true mixture parameters stored in the benchmark.

    /usr/bin/python3 examples/clustering/evaluate.py
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import st_io  # noqa: E402
from common import LIKELIHOOD_DESCRIPTION, point_log_likelihood, split_output  # noqa: E402
from model import SetTransformer  # noqa: E402


def build_model(meta):
    return SetTransformer(dim_input=int(meta["dim_in"]),
                          num_outputs=int(meta["num_outputs"]),
                          dim_output=int(meta["dim_output"]),
                          num_inds=int(meta["num_inds"]),
                          dim_hidden=int(meta["dim"]),
                          num_heads=int(meta["heads"]),
                          ln=meta["ln"] == "true")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=os.path.join(HERE, "weights.safetensors"))
    p.add_argument("--benchmark", default=os.path.join(HERE, "benchmark.safetensors"))
    p.add_argument("--out", default=os.path.join(HERE, "results.json"))
    args = p.parse_args()

    w, meta = st_io.read(args.weights)
    if meta.get("kind") != "settransformer-model":
        raise SystemExit("unexpected weights kind %r" % meta.get("kind"))
    model = build_model(meta)
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in w.items()}
    model.load_state_dict(state, strict=True)
    model = model.double().eval()

    b, _ = st_io.read(args.benchmark)
    x = torch.from_numpy(b["x"].astype(np.float64))
    pi = torch.from_numpy(b["pi"].astype(np.float64))
    mu = torch.from_numpy(b["mu"].astype(np.float64))
    sigma = torch.from_numpy(b["sigma"].astype(np.float64))

    with torch.no_grad():
        out = model(x)
        m_ll = point_log_likelihood(x, *split_output(out))          # [100, 300]
        o_ll = point_log_likelihood(x, torch.log(pi), mu, sigma)    # [100, 300]

    res = {
        "model_ll": m_ll.mean().item(),
        "oracle_ll": o_ll.mean().item(),
        "gap": o_ll.mean().item() - m_ll.mean().item(),
        "sets": int(x.shape[0]),
        "points_per_set": int(x.shape[1]),
        "weights": os.path.basename(args.weights),
        "weights_dtype": "F16 -> float32 -> float64",
        "likelihood": LIKELIHOOD_DESCRIPTION,
        "per_set_model_ll": [float(v) for v in m_ll.mean(1)],
        "per_set_oracle_ll": [float(v) for v in o_ll.mean(1)],
    }
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print("model_ll  %.4f\noracle_ll %.4f\ngap       %.4f\nwrote %s"
          % (res["model_ll"], res["oracle_ll"], res["gap"], args.out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The ISAB forward pass in PyTorch, timed, printing the same JSON lines as
`isab bench --json`, so bench/compare.sh can put the two side by side.

Two variants of the same module (isab-pytorch semantics, written here):
  einsum  attention as isab-pytorch writes it (einsum, masked_fill, softmax)
  sdpa    torch.nn.functional.scaled_dot_product_attention (PyTorch >= 2.0)

Usage: torch_ref.py [--shape b,n,dim,heads,m]... [--variant einsum|sdpa]
                    [--latent-self-attend 0|1] [--iters N] [--threads T]
                    [--device cpu|cuda] [--dtype float32|bfloat16]
"""
import argparse
import json
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, sdpa):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale, self.sdpa = heads, dim_head ** -0.5, sdpa
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def split(self, t):
        b, n, _ = t.shape
        return t.view(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, x, context, mask=None):
        q = self.split(self.to_q(x))
        k, v = (self.split(t) for t in self.to_kv(context).chunk(2, dim=-1))
        if self.sdpa:
            attn_mask = None if mask is None else mask[:, None, None, :]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        else:
            sim = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
            if mask is not None:
                sim = sim.masked_fill(~mask[:, None, None, :], -torch.finfo(sim.dtype).max)
            out = torch.einsum("bhij,bhjd->bhid", sim.softmax(dim=-1), v)
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class ISAB(nn.Module):
    def __init__(self, dim, heads, dim_head, num_latents, latent_self_attend, sdpa):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.attn1 = Attention(dim, heads, dim_head, sdpa)
        self.attn2 = Attention(dim, heads, dim_head, sdpa)
        self.latent_self_attend = latent_self_attend

    def forward(self, x, mask=None):
        b = x.shape[0]
        latents = self.latents.unsqueeze(0).expand(b, -1, -1)
        context = x
        if self.latent_self_attend:
            context = torch.cat((latents, x), dim=-2)
            if mask is not None:
                mask = F.pad(mask, (latents.shape[1], 0), value=True)
        latents = self.attn1(latents, context, mask)
        return self.attn2(x, latents), latents


def flops(b, n, dim, inner, m, self_attend):
    ctx = n + m if self_attend else n
    return 2 * b * (m * dim * inner + ctx * dim * 2 * inner + 2 * m * ctx * inner + m * inner * dim
                    + n * dim * inner + m * dim * 2 * inner + 2 * n * m * inner + n * inner * dim)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", action="append", help="b,n,dim,heads,m (default 1,16384,512,8,128)")
    p.add_argument("--dim-head", type=int, default=64)
    p.add_argument("--variant", choices=["einsum", "sdpa"], default="einsum")
    p.add_argument("--latent-self-attend", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    a = p.parse_args()
    if a.variant == "sdpa" and not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"torch_ref.py: PyTorch {torch.__version__} has no scaled_dot_product_attention (needs 2.0)")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dtype = getattr(torch, a.dtype)
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
    for s in a.shape or ["1,16384,512,8,128"]:
        b, n, dim, heads, m = (int(v) for v in s.split(","))
        torch.manual_seed(0)
        model = ISAB(dim, heads, a.dim_head, m, bool(a.latent_self_attend), a.variant == "sdpa").to(dev, dtype).eval()
        x = torch.randn(b, n, dim, device=dev, dtype=dtype)
        mask = torch.ones(b, n, dtype=torch.bool, device=dev)
        times = []
        with torch.no_grad():
            for i in range(a.warmup + a.iters):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                model(x, mask)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                if i >= a.warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
        med = statistics.median(times)
        gflop = flops(b, n, dim, heads * a.dim_head, m, bool(a.latent_self_attend)) / 1e9
        print(json.dumps({
            "impl": f"torch-{a.variant}", "torch": torch.__version__, "device": name, "precision": a.dtype,
            "b": b, "n": n, "dim": dim, "heads": heads, "m": m,
            "ms_median": round(med, 3), "ms_min": round(min(times), 3), "ms_max": round(max(times), 3),
            "gflops": round(gflop / (med / 1e3), 2),
        }), flush=True)


if __name__ == "__main__":
    main()

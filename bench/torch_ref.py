#!/usr/bin/env python3
"""The ISAB forward pass in PyTorch, timed, printing the same JSON lines as
`isab bench --json`, so bench/compare.sh can put the two side by side.

Two variants of the same module (isab-pytorch semantics, written here):
  einsum  attention as isab-pytorch writes it (einsum, masked_fill, softmax)
  sdpa    torch.nn.functional.scaled_dot_product_attention (PyTorch >= 2.0)

Usage: torch_ref.py [--shape b,n,dim,heads,m]... [--sweep-n FROM..TO]
                    [--variant einsum|sdpa] [--latent-self-attend 0|1]
                    [--iters N] [--warmup N] [--threads T] [--device cpu|cuda]
                    [--dtype float32|bfloat16|float16] [--peak-n N]

Every line holds device, precision (fp32, bf16 or fp16), b, n, dim, heads,
dim_head, m, latent_self_attend, ms_median, ms_min, ms_max, gflops,
peak_gflops (the best of a few n x n torch.mm on the same device in the
same run), device_mem_bytes (torch.cuda.max_memory_allocated during the
forward pass on CUDA, null on the CPU), and impl, torch, threads, blas.
On CUDA, TF32 is off so that float32 means float32.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

PRECISION = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
DEFAULT_SHAPE = "1,16384,512,8,128"


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
    """Operations of one forward pass, counted as isab.Config.FLOPs does."""
    ctx = n + m if self_attend else n
    return 2 * b * (m * dim * inner + ctx * dim * 2 * inner + 2 * m * ctx * inner + m * inner * dim
                    + n * dim * inner + m * dim * 2 * inner + 2 * n * m * inner + n * inner * dim)


def parse_shape(s):
    try:
        v = [int(x) for x in s.split(",")]
    except ValueError:
        v = []
    if len(v) != 5 or min(v) < 1:
        raise argparse.ArgumentTypeError(f"want b,n,dim,heads,m (5 positive integers), got {s!r}")
    return tuple(v)


def parse_sweep(s):
    a, sep, b = s.partition("..")
    try:
        lo, hi = int(a), int(b)
    except ValueError:
        lo = hi = 0
    if not sep or lo < 1 or hi < lo:
        raise argparse.ArgumentTypeError(f"want FROM..TO with 1 <= FROM <= TO, got {s!r}")
    return lo, hi


def expand(shapes, sweep):
    """Every shape at n = FROM, 2*FROM, ... <= TO (as isab bench --sweep-n), without repeats."""
    out = []
    for b, n, dim, heads, m in shapes:
        ns = [n]
        if sweep:
            ns, k = [], sweep[0]
            while k <= sweep[1]:
                ns.append(k)
                k *= 2
        for k in ns:
            if (b, k, dim, heads, m) not in out:
                out.append((b, k, dim, heads, m))
    return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_backend():
    """Which BLAS the CPU matmuls run on: mkl, openblas, reference or unknown.
    Debian's torch calls libblas.so.3, whichever library the alternatives
    system points that at; /proc/self/maps shows the one loaded."""
    if torch.backends.mkl.is_available():
        return "mkl"
    torch.mm(torch.ones(8, 8), torch.ones(8, 8))  # make sure the BLAS is loaded
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in os.path.basename(path).lower():
                    libs.add(os.path.realpath(path))
    except OSError:
        return "unknown"
    # The library behind libblas.so.3 decides: OpenBLAS's liblapack can be
    # loaded beside the reference libblas.
    blas = [p for p in libs if os.path.basename(p).startswith("libblas.so")] or sorted(libs)
    for key in ("openblas", "mkl", "blis", "atlas"):
        if any(key in p.lower() for p in blas):
            return key
    if blas and all(os.path.basename(p).startswith("libblas.so") for p in blas):
        return "reference"
    return "unknown"


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def peak_gflops(dev, dtype, n, runs=3):
    """Best rate of an n x n x n torch.mm on dev, after one untimed run."""
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    best = None
    for i in range(runs + 1):
        sync(dev)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(dev)
        t = time.perf_counter() - t0
        if i > 0 and (best is None or t < best):
            best = t
    return 2 * n ** 3 / best / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", action="append", type=parse_shape, help=f"b,n,dim,heads,m, repeatable (default {DEFAULT_SHAPE})")
    p.add_argument("--sweep-n", type=parse_sweep, help="FROM..TO: every shape at n = FROM, 2*FROM, ... up to TO")
    p.add_argument("--dim-head", type=int, default=64)
    p.add_argument("--variant", choices=["einsum", "sdpa"], default="einsum")
    p.add_argument("--latent-self-attend", type=int, choices=[0, 1], default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=sorted(PRECISION), default="float32")
    p.add_argument("--peak-n", type=int, default=1024, help="size of the square torch.mm timed for peak_gflops; 0 skips it")
    a = p.parse_args()
    if a.iters < 1 or a.warmup < 0 or a.dim_head < 1 or a.peak_n < 0:
        p.error("--iters and --dim-head must be at least 1, --warmup and --peak-n at least 0")
    if a.variant == "sdpa" and not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"torch_ref.py: PyTorch {torch.__version__} has no scaled_dot_product_attention "
                 "(it needs PyTorch >= 2.0); use --variant einsum")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        dev = torch.device(a.device)
    except RuntimeError as e:
        sys.exit(f"torch_ref.py: --device {a.device}: {e}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit(f"torch_ref.py: --device {a.device}, but this PyTorch ({torch.__version__}) sees no CUDA device")
        # float32 must mean float32: no TF32 tensor-core rounding.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        name = torch.cuda.get_device_name(dev)
        blas = "cublas"
    else:
        name = f"cpu ({cpu_name()})"
        blas = blas_backend()
    dtype = getattr(torch, a.dtype)
    try:
        torch.mm(torch.ones(2, 2, device=dev, dtype=dtype), torch.ones(2, 2, device=dev, dtype=dtype))
    except RuntimeError as e:
        sys.exit(f"torch_ref.py: PyTorch {torch.__version__} cannot multiply {a.dtype} matrices on {dev}: "
                 f"{str(e).splitlines()[0]}; use another --dtype")
    with torch.no_grad():
        peak = round(peak_gflops(dev, dtype, a.peak_n), 2) if a.peak_n > 0 else None
    for b, n, dim, heads, m in expand(a.shape or [parse_shape(DEFAULT_SHAPE)], a.sweep_n):
        torch.manual_seed(0)
        model = ISAB(dim, heads, a.dim_head, m, bool(a.latent_self_attend), a.variant == "sdpa").to(dev, dtype).eval()
        x = torch.randn(b, n, dim, device=dev, dtype=dtype)
        mask = torch.ones(b, n, dtype=torch.bool, device=dev)
        times = []
        mem = None
        if dev.type == "cuda":
            sync(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        with torch.no_grad():
            for i in range(a.warmup + a.iters):
                sync(dev)
                t0 = time.perf_counter()
                model(x, mask)
                sync(dev)
                if i >= a.warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
        if dev.type == "cuda":
            mem = torch.cuda.max_memory_allocated(dev)
        med = statistics.median(times)
        gflop = flops(b, n, dim, heads * a.dim_head, m, bool(a.latent_self_attend)) / 1e9
        print(json.dumps({
            "impl": f"torch-{a.variant}", "torch": torch.__version__, "device": name, "precision": PRECISION[a.dtype],
            "b": b, "n": n, "dim": dim, "heads": heads, "dim_head": a.dim_head, "m": m,
            "latent_self_attend": bool(a.latent_self_attend),
            "ms_median": round(med, 3), "ms_min": round(min(times), 3), "ms_max": round(max(times), 3),
            "gflops": round(gflop / (med / 1e3), 2), "peak_gflops": peak, "device_mem_bytes": mem,
            "threads": torch.get_num_threads() if dev.type == "cpu" else None, "blas": blas,
        }), flush=True)
        del model, x, mask
        if dev.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

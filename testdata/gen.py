#!/usr/bin/python3
"""Generate the project's own ISAB test fixtures.

Makes, for each case listed in CASES below, three safetensors files in this
folder:

    NAME.weights.safetensors   state_dict() of the ISAB module (+ config metadata)
    NAME.input.safetensors     x [b, n, dim], optional mask [b, n], optional latents
    NAME.expected.safetensors  out [b, n, dim] and latents [b, m, dim], F32

and, for the cases marked torch_save, NAME.weights.pt: the same state_dict
written by plain torch.save (PyTorch's zip format, no metadata).

plus cases.json describing every case. The ISAB module (as in the isab-pytorch
package) is re-implemented here in PyTorch; expected outputs are computed in
float64 and stored as float32. Output is deterministic: running the script
twice gives byte-identical files.

Run it with Debian's Python, which has python3-torch and python3-numpy:

    /usr/bin/python3 testdata/gen.py           # (re)generate the fixtures
    /usr/bin/python3 testdata/gen.py --check   # verify the files on disk against
                                               # an independent loop-based numpy
                                               # implementation (writes nothing)
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# Masked logits are filled with the negated float32 maximum (what isab-pytorch
# does for float32 inputs), also when computing in float64.
MASK_FILL = -torch.finfo(torch.float32).max  # -3.4028234663852886e38

BASE_SEED = 20240611


# ---------------------------------------------------------------------------
# The ISAB module
# ---------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _split(self, t):
        # 'b n (h d) -> b h n d'
        b, n, hd = t.shape
        return t.reshape(b, n, self.heads, hd // self.heads).transpose(1, 2)

    def forward(self, x, context, mask=None):
        q = self.to_q(x)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        q, k, v = map(self._split, (q, k, v))
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
        if mask is not None:
            sim = sim.masked_fill(~mask[:, None, None, :], MASK_FILL)
        attn = sim.softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)
        b, h, n, d = out.shape
        out = out.transpose(1, 2).reshape(b, n, h * d)  # 'b h n d -> b n (h d)'
        return self.to_out(out)


class ISAB(nn.Module):
    def __init__(self, dim, heads=8, dim_head=64, num_latents=None,
                 latent_self_attend=False):
        super().__init__()
        if num_latents is not None:
            self.latents = nn.Parameter(torch.randn(num_latents, dim))
        else:
            self.latents = None
        self.latent_self_attend = latent_self_attend
        self.attn1 = Attention(dim, heads, dim_head)
        self.attn2 = Attention(dim, heads, dim_head)

    def forward(self, x, latents=None, mask=None):
        b = x.shape[0]
        assert (latents is None) != (self.latents is None)
        if latents is None:
            latents = self.latents
        if latents.ndim == 2:
            latents = latents.unsqueeze(0).expand(b, -1, -1)
        context = x
        if self.latent_self_attend:
            m = latents.shape[-2]
            context = torch.cat((latents, x), dim=-2)
            if mask is not None:
                mask = F.pad(mask, (m, 0), value=True)
        latents = self.attn1(latents, context, mask=mask)
        out = self.attn2(x, latents)
        return out, latents


# ---------------------------------------------------------------------------
# safetensors writer / reader
# ---------------------------------------------------------------------------

_NP_LE = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "U8": "u1",
    "BOOL": "u1",
}


def tensor_bytes(t, dtype):
    """Raw little-endian bytes of tensor t stored as safetensors dtype."""
    t = t.detach().cpu().contiguous()
    if dtype == "BF16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "BOOL":
        return t.to(torch.bool).numpy().astype("u1").tobytes()
    if dtype == "U8":
        return t.to(torch.uint8).numpy().astype("u1").tobytes()
    torch_dt = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16}[dtype]
    return t.to(torch_dt).numpy().astype(_NP_LE[dtype]).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> (tensor, dtype). metadata: dict str -> str."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t, dtype = tensors[name]
        data = tensor_bytes(t, dtype)
        header[name] = {
            "dtype": dtype,
            "shape": [int(s) for s in t.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for data in blobs:
            f.write(data)


def read_safetensors(path):
    """Independent reader used by --check: returns (dict name -> float64/bool
    numpy array, dtypes, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    meta = header.pop("__metadata__", {})
    out, dtypes = {}, {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        buf = raw[base + a:base + b]
        dt = info["dtype"]
        if dt == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).astype(np.float64)
        elif dt == "BOOL":
            arr = np.frombuffer(buf, dtype="u1") != 0
        elif dt == "U8":
            arr = np.frombuffer(buf, dtype="u1").copy()
        else:
            arr = np.frombuffer(buf, dtype=_NP_LE[dt]).astype(np.float64)
        out[name] = arr.reshape(info["shape"])
        dtypes[name] = dt
    return out, dtypes, meta


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

CASES = [
    dict(name="tiny_basic", batch=1, n=1, dim=8, heads=1, dim_head=4,
         num_latents=1, latents="learned", latent_self_attend=False,
         mask=None, weights_dtype="F32", metadata_has_config=True),
    dict(name="odd_mask_selfattend", batch=3, n=33, dim=24, heads=3, dim_head=16,
         num_latents=7, latents="learned", latent_self_attend=True,
         mask="lengths", weights_dtype="F32", metadata_has_config=True,
         torch_save=True),
    dict(name="ext2d_f16", batch=2, n=7, dim=16, heads=2, dim_head=8,
         num_latents=5, latents="external2d", latent_self_attend=False,
         mask="random", weights_dtype="F16", metadata_has_config=True),
    dict(name="ext3d_f64_u8mask", batch=2, n=17, dim=12, heads=2, dim_head=6,
         num_latents=3, latents="external3d", latent_self_attend=True,
         mask="random", weights_dtype="F64", metadata_has_config=True,
         mask_dtype="U8", x_dtype="F64"),
    dict(name="default_dimhead", batch=2, n=257, dim=32, heads=2, dim_head=64,
         num_latents=16, latents="learned", latent_self_attend=False,
         mask=None, weights_dtype="BF16", metadata_has_config=True),
    dict(name="meta_override", batch=1, n=9, dim=16, heads=4, dim_head=4,
         num_latents=2, latents="learned", latent_self_attend=True,
         mask=None, weights_dtype="F32", metadata_has_config=False),
]

_ROUND = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "F64": torch.float32}


def nmse(a, b):
    a = a.double()
    b = b.double()
    return float(((a - b) ** 2).sum() / (b ** 2).sum())


def make_case(idx, c):
    torch.manual_seed(BASE_SEED + idx)
    b, n, dim, m = c["batch"], c["n"], c["dim"], c["num_latents"]
    learned = c["latents"] == "learned"
    model = ISAB(dim, heads=c["heads"], dim_head=c["dim_head"],
                 num_latents=m if learned else None,
                 latent_self_attend=c["latent_self_attend"])

    # Round the weights to the storage dtype; the truth is computed from the
    # rounded values (F64 storage holds exact copies of float32 weights).
    rdt = _ROUND[c["weights_dtype"]]
    sd = {k: v.detach().to(rdt).to(torch.float32) for k, v in model.state_dict().items()}

    x = torch.randn(b, n, dim)
    ext = None
    if c["latents"] == "external2d":
        ext = torch.randn(m, dim)
    elif c["latents"] == "external3d":
        ext = torch.randn(b, m, dim)

    mask = None
    if c["mask"] == "lengths":
        lengths = torch.randint(1, n, (b,))
        lengths[0] = 0       # one row fully masked
        lengths[-1] = n      # one row fully kept
        mask = torch.arange(n)[None, :] < lengths[:, None]
    elif c["mask"] == "random":
        mask = torch.rand(b, n) < 0.7
        mask[0, 0] = True
        mask[0, -1] = False
        if not c["latent_self_attend"]:
            # Last row fully masked: with no latents in the context, all of
            # attn1's logits are MASK_FILL and the row becomes a uniform
            # average over every key.
            mask[-1] = False

    # float64 truth
    m64 = ISAB(dim, heads=c["heads"], dim_head=c["dim_head"],
               num_latents=m if learned else None,
               latent_self_attend=c["latent_self_attend"]).double()
    m64.load_state_dict({k: v.double() for k, v in sd.items()})
    with torch.no_grad():
        out64, lat64 = m64(x.double(), None if ext is None else ext.double(), mask)

    # float32 torch run, to record how far plain fp32 lands from the truth
    m32 = ISAB(dim, heads=c["heads"], dim_head=c["dim_head"],
               num_latents=m if learned else None,
               latent_self_attend=c["latent_self_attend"])
    m32.load_state_dict(sd)
    with torch.no_grad():
        out32, lat32 = m32(x, ext, mask)

    wdt = c["weights_dtype"]
    meta = {"kind": "isab", "dim": str(dim),
            "num_latents": str(m) if learned else "none"}
    if c["metadata_has_config"]:
        meta["heads"] = str(c["heads"])
        meta["dim_head"] = str(c["dim_head"])
        meta["latent_self_attend"] = "true" if c["latent_self_attend"] else "false"
    name = c["name"]
    write_safetensors(os.path.join(HERE, name + ".weights.safetensors"),
                      {k: (v, wdt) for k, v in sd.items()}, meta)
    if c.get("torch_save"):
        # The same weights as a plain torch.save of the state_dict (the zip
        # format, no metadata), for the Go .pt reader.
        assert wdt == "F32"
        model.load_state_dict(sd)
        torch.save(model.state_dict(), os.path.join(HERE, name + ".weights.pt"))

    inputs = {"x": (x, c.get("x_dtype", "F32"))}
    if mask is not None:
        inputs["mask"] = (mask, c.get("mask_dtype", "BOOL"))
    if ext is not None:
        inputs["latents"] = (ext, "F32")
    write_safetensors(os.path.join(HERE, name + ".input.safetensors"), inputs)

    write_safetensors(os.path.join(HERE, name + ".expected.safetensors"),
                      {"out": (out64, "F32"), "latents": (lat64, "F32")})

    entry = {k: v for k, v in c.items() if k not in ("mask_dtype", "x_dtype")}
    entry["kind"] = "isab"
    entry["mask_dtype"] = c.get("mask_dtype", "BOOL") if mask is not None else None
    entry["x_dtype"] = c.get("x_dtype", "F32")
    entry["torch_fp32_nmse_out"] = nmse(out32, out64)
    entry["torch_fp32_nmse_latents"] = nmse(lat32, lat64)
    return entry


def generate():
    entries = [make_case(i, c) for i, c in enumerate(CASES)]
    keys = ["name", "kind", "batch", "n", "dim", "heads", "dim_head", "num_latents",
            "latents", "latent_self_attend", "mask", "mask_dtype", "x_dtype",
            "weights_dtype", "metadata_has_config",
            "torch_fp32_nmse_out", "torch_fp32_nmse_latents"]
    ordered = [{k: e[k] for k in keys} for e in entries]
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(ordered, f, indent=1)
        f.write("\n")
    for e in ordered:
        print("%-22s nmse out %.3e  latents %.3e" % (
            e["name"], e["torch_fp32_nmse_out"], e["torch_fp32_nmse_latents"]))


# ---------------------------------------------------------------------------
# --check: an independent, loop-based numpy implementation
# ---------------------------------------------------------------------------


def naive_linear(w, rows):
    # w: [out, in], rows: [n, in] -> [n, out], one output row at a time
    res = np.zeros((rows.shape[0], w.shape[0]))
    for i in range(rows.shape[0]):
        for o in range(w.shape[0]):
            res[i, o] = np.dot(w[o], rows[i])
    return res


def naive_attention(wq, wkv, wo, heads, dim_head, queries, context, keep):
    inner = heads * dim_head
    q = naive_linear(wq, queries)
    kv = naive_linear(wkv, context)
    k, v = kv[:, :inner], kv[:, inner:]
    nq, nk = queries.shape[0], context.shape[0]
    merged = np.zeros((nq, inner))
    scale = 1.0 / np.sqrt(dim_head)
    for h in range(heads):
        lo, hi = h * dim_head, (h + 1) * dim_head
        for i in range(nq):
            logits = np.empty(nk)
            for j in range(nk):
                if keep is not None and not keep[j]:
                    logits[j] = -3.4028234663852886e38
                else:
                    logits[j] = np.dot(q[i, lo:hi], k[j, lo:hi]) * scale
            top = max(logits)
            weights = np.array([np.exp(l - top) for l in logits])
            weights /= weights.sum()
            acc = np.zeros(dim_head)
            for j in range(nk):
                acc += weights[j] * v[j, lo:hi]
            merged[i, lo:hi] = acc
    return naive_linear(wo, merged)


def check():
    with open(os.path.join(HERE, "cases.json")) as f:
        cases = json.load(f)
    worst = 0.0
    for c in cases:
        name = c["name"]
        w, _, meta = read_safetensors(os.path.join(HERE, name + ".weights.safetensors"))
        inp, _, _ = read_safetensors(os.path.join(HERE, name + ".input.safetensors"))
        exp, _, _ = read_safetensors(os.path.join(HERE, name + ".expected.safetensors"))
        heads, dim_head = c["heads"], c["dim_head"]
        selfatt = c["latent_self_attend"]
        x = inp["x"]
        b = x.shape[0]
        mask = inp.get("mask")
        lat_all = np.zeros(exp["latents"].shape)
        out_all = np.zeros(exp["out"].shape)
        for bi in range(b):
            if "latents" in w:
                lat = w["latents"]
            elif inp["latents"].ndim == 2:
                lat = inp["latents"]
            else:
                lat = inp["latents"][bi]
            keep = None if mask is None else (mask[bi] != 0)
            ctx = x[bi]
            if selfatt:
                ctx = np.concatenate([lat, x[bi]], axis=0)
                if keep is not None:
                    keep = np.concatenate([np.ones(lat.shape[0], dtype=bool), keep])
            new_lat = naive_attention(w["attn1.to_q.weight"], w["attn1.to_kv.weight"],
                                      w["attn1.to_out.weight"], heads, dim_head,
                                      lat, ctx, keep)
            out = naive_attention(w["attn2.to_q.weight"], w["attn2.to_kv.weight"],
                                  w["attn2.to_out.weight"], heads, dim_head,
                                  x[bi], new_lat, None)
            lat_all[bi] = new_lat
            out_all[bi] = out
        d_out = float(np.max(np.abs(out_all - exp["out"])))
        d_lat = float(np.max(np.abs(lat_all - exp["latents"])))
        worst = max(worst, d_out, d_lat)
        print("%-22s max|diff| out %.3e  latents %.3e" % (name, d_out, d_lat))
    ok = worst < 1e-5
    print("check %s (worst max abs diff %.3e)" % ("OK" if ok else "FAILED", worst))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="verify the fixtures on disk with a naive numpy implementation")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        sys.exit(0 if check() else 1)
    generate()


if __name__ == "__main__":
    main()

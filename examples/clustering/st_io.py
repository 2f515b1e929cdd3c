"""Minimal safetensors reader/writer (numpy based), written for this example.

File layout: u64 little-endian header length, JSON header (padded with spaces
to a multiple of 8 bytes), then the raw little-endian tensor bytes. The header
maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
(offsets relative to the start of the data section) and may carry a
"__metadata__" object of string -> string.
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def _code(dt):
    dt = np.dtype(dt).newbyteorder("<") if np.dtype(dt).byteorder == ">" else np.dtype(dt)
    for code, d in _DTYPES.items():
        if d == dt.newbyteorder("<") or d == dt:
            return code
    raise ValueError("unsupported dtype %s" % dt)


def write(path, tensors, metadata=None):
    """Write an ordered mapping name -> numpy array (dtype kept as given)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        code = _code(arr.dtype)
        raw = np.ascontiguousarray(arr, dtype=_DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def read(path):
    """Return (dict name -> numpy array in the stored dtype, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = _DTYPES[info["dtype"]]
        arr = np.frombuffer(raw[base + b:base + e], dtype=dt)
        out[name] = arr.reshape(info["shape"]).copy()
    return out, meta

#!/usr/bin/env python3
"""make_safetensors_fixtures.py — small safetensors files written by the Python package, read by
tests/core/test_safetensors.c. Values follow formulas the C test recomputes:
  float tensor k, element i: (i % 64) * 0.25 - k     (exact in f16 / bf16)
  I32 / I64 element i:       i * 3 - 7
  U8 element i:              (i * 37) % 256
Usage: scripts/make_safetensors_fixtures.py            # (re)writes tests/fixtures/safetensors/
       scripts/make_safetensors_fixtures.py --verify F # checks a file cameo wrote (see the C test)
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "safetensors")


def fval(k, shape, dtype):
    n = int(np.prod(shape)) if len(shape) else 1
    v = (torch.arange(n) % 64).to(torch.float64) * 0.25 - k
    return v.reshape(shape).to(dtype)


def ival(shape, dtype):
    n = int(np.prod(shape)) if len(shape) else 1
    return (torch.arange(n, dtype=torch.int64) * 3 - 7).reshape(shape).to(dtype)


def u8val(shape):
    n = int(np.prod(shape)) if len(shape) else 1
    return ((torch.arange(n) * 37) % 256).to(torch.uint8).reshape(shape)


def writer_ref_tensors():
    """The set the C test also builds and writes; its bytes must equal writer_ref.safetensors."""
    return {
        "z.weight": fval(0, (3, 4), torch.float32),
        "a.weight": fval(1, (2, 2, 2), torch.float32),
        "b.bf": fval(2, (5,), torch.bfloat16),
        "b.half": fval(3, (2, 3), torch.float16),
        "c.double": fval(4, (3,), torch.float64),
        "ids": ival((4,), torch.int32),
        "mask": u8val((7,)),
        "scalar": fval(5, (), torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "odd\"name\\é\n\x01/": fval(6, (1,), torch.float16),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    # 1. every cameo dtype + an I64 buffer (narrowed to I32 by st_to_tensor), one metadata key
    basic = {
        "f32": fval(0, (2, 3), torch.float32),
        "bf16": fval(1, (4,), torch.bfloat16),
        "f16": fval(2, (2, 2), torch.float16),
        "f64": fval(3, (3,), torch.float64),
        "i32": ival((5,), torch.int32),
        "u8": u8val((3, 3)),
        "position_ids": ival((1, 6), torch.int64),
        "scalar": fval(4, (), torch.float32),
        "empty": torch.zeros((0, 4), dtype=torch.bfloat16),
        "big": fval(5, (2, 3, 4, 5, 1, 2), torch.float32),
    }
    save_file(basic, os.path.join(OUT, "basic.safetensors"), metadata={"format": "pt"})
    # 2. dtypes cameo has no type for: the file opens, st_to_tensor names them
    save_file({"flags": torch.tensor([True, False, True]),
               "fp8": torch.zeros(4, dtype=torch.float8_e4m3fn),
               "w": fval(0, (2,), torch.float32)},
              os.path.join(OUT, "unsupported.safetensors"))
    # 3. reference bytes for the writer (one metadata key: Python writes several in hash order)
    save_file(writer_ref_tensors(), os.path.join(OUT, "writer_ref.safetensors"), metadata={"format": "pt"})
    save_file({"x": fval(0, (2,), torch.float32), "y": ival((2,), torch.int32)},
              os.path.join(OUT, "writer_ref_nometa.safetensors"))
    # 4. a sharded diffusers-style checkpoint
    sd = os.path.join(OUT, "sharded")
    os.makedirs(sd, exist_ok=True)
    s1 = {"blocks.0.w": fval(0, (2, 2), torch.float32), "blocks.0.b": fval(1, (2,), torch.float32)}
    s2 = {"blocks.1.w": fval(2, (2, 2), torch.bfloat16), "norm.scale": fval(3, (2,), torch.float32),
          "unlisted": fval(4, (1,), torch.float32)}  # in a shard but not in weight_map: ignored
    names = ["diffusion_pytorch_model-00001-of-00002.safetensors", "diffusion_pytorch_model-00002-of-00002.safetensors"]
    save_file(s1, os.path.join(sd, names[0]), metadata={"format": "pt"})
    save_file(s2, os.path.join(sd, names[1]), metadata={"format": "pt"})
    wm = {k: names[0] for k in s1}
    wm.update({k: names[1] for k in s2 if k != "unlisted"})
    total = sum(t.numel() * t.element_size() for t in list(s1.values()) + list(s2.values()))
    with open(os.path.join(sd, "diffusion_pytorch_model.safetensors.index.json"), "w") as fp:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))}, fp, indent=2)
    print("wrote", OUT)


def verify(path):
    """Loads a file cameo wrote with the Python package and compares it with writer_ref."""
    got = load_file(path)
    want = writer_ref_tensors()
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        assert torch.equal(got[k], want[k]), k
    with open(path, "rb") as fp:
        same = fp.read() == open(os.path.join(OUT, "writer_ref.safetensors"), "rb").read()
    print(f"{path}: Python reads all {len(got)} tensors correctly; bytes identical to writer_ref: {same}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        verify(sys.argv[2])
    else:
        main()

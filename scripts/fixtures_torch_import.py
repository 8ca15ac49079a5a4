#!/usr/bin/env python3
"""fixtures_torch_import.py — tiny stand-ins for the released instantcharacter_ip-adapter.bin.

Writes, under tests/fixtures/torch_import/:
  tiny_ip_adapter.bin      torch.save({"image_proj": OrderedDict, "ip_adapter": OrderedDict})
                           the released file's structure: bf16 and f32 tensors, a transposed
                           (non-contiguous) view, a view at a storage offset, two tensors sharing
                           one storage, a 0-d tensor, the state_dict _metadata attribute
  tiny_expected.safetensors the same tensors, contiguous, keyed image_proj.<k> / ip_adapter.<k>
  tiny_ip_adapter.pkl.txt   pickletools' disassembly of data.pkl (the opcodes the C VM handles)
Run from the repository root: python3 scripts/fixtures_torch_import.py
"""
import io
import os
import pickletools
import zipfile
from collections import OrderedDict

import torch
from safetensors.torch import save_file

OUT = "tests/fixtures/torch_import"


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(0)

    def r(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g).to(dtype)

    # a state_dict-like OrderedDict with _metadata, as nn.Module.state_dict() returns
    proj = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)).to(torch.bfloat16)
    image_proj = proj.state_dict()  # OrderedDict with ._metadata
    image_proj["latents"] = r(1, 5, 4, dtype=torch.bfloat16)
    base = r(6, 4)                                  # f32 storage shared by two views
    image_proj["proj_t"] = base.t()                 # [4, 6], strides (1, 4): non-contiguous
    image_proj["rows"] = base[2:5]                  # [3, 4] at storage offset 8, same storage
    image_proj["scalar"] = torch.tensor(0.5)        # 0-d f32

    ip_adapter = OrderedDict()
    for i in range(2):
        ip_adapter[f"{i}.to_k_ip.weight"] = r(8, 6, dtype=torch.bfloat16)
        ip_adapter[f"{i}.to_v_ip.weight"] = r(8, 6, dtype=torch.bfloat16)
        ip_adapter[f"{i}.norm_ip_q.scale"] = torch.ones(4, dtype=torch.bfloat16)
    big = r(3, 10, dtype=torch.bfloat16)
    ip_adapter["1.offset_view"] = big[1:, 2:7]      # [2, 5] offset 12, strides (10, 1)
    ip_adapter["1.half"] = r(3, dtype=torch.float16)

    obj = {"image_proj": image_proj, "ip_adapter": ip_adapter}
    path = os.path.join(OUT, "tiny_ip_adapter.bin")
    torch.save(obj, path)

    expected = {}
    for top, d in obj.items():
        for k, v in d.items():
            expected[f"{top}.{k}"] = v.contiguous().clone()
    save_file(expected, os.path.join(OUT, "tiny_expected.safetensors"))

    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        data = z.read(pkl)
        names = z.namelist()
    buf = io.StringIO()
    pickletools.dis(data, out=buf)
    with open(os.path.join(OUT, "tiny_ip_adapter.pkl.txt"), "w") as f:
        f.write("# zip entries: " + ", ".join(names) + "\n")
        f.write(buf.getvalue())
    # the reload check: what torch.load returns is what we stored
    back = torch.load(path, weights_only=True)
    for top, d in obj.items():
        for k, v in d.items():
            assert torch.equal(back[top][k], v), (top, k)
    print(f"wrote {path} ({os.path.getsize(path)} bytes), {len(expected)} tensors")


if __name__ == "__main__":
    main()

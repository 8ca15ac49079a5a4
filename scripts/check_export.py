"""check_export.py — loads an exported InstantCharacter adapter into the PyTorch transcription
(scripts/ic_reference.py) with strict=True: every key of the published layout present, no extra
key, every shape equal. The trainer's export (`cameo export`) is checked with it.

usage:
    python3 scripts/check_export.py ADAPTER.safetensors [--forward] [--head-dims 64,64]
    python3 scripts/check_export.py instantcharacter_ip-adapter.bin   # the published torch pickle
                                                                     # {"image_proj": ..., "ip_adapter": ...}

    ADAPTER    a .safetensors file with keys image_proj.* and ip_adapter.{i}.* (flattened), or the
               published .bin. The sizes are read from the shapes; the head splits (not visible in
               shapes) from the metadata keys ic.head_dim / ic.resampler_head_dim, else 64 / 64, or
               from --head-dims (projector blocks, resampler).
    --forward  also run the projector (1 sample, a few tokens) and every IP branch on random
               inputs in f32 and check the outputs are finite (for tiny and medium sizes: the full
               size needs ~11 GB of host memory for the f32 weights).

Exit status 0 when the adapter loads strictly (and the forward is finite), 1 otherwise, with the
missing / unexpected / misshapen keys listed. Loading uses the meta device and assign=True, so a
full-size file is checked without a second copy of its 5.6 GB in memory.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ic_reference import ICAdapter, config_from_state_dict  # noqa: E402


def read(path):
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    obj = torch.load(path, map_location="cpu", weights_only=True)
    sd = {}
    for part in ("image_proj", "ip_adapter"):
        for k, v in obj.get(part, {}).items():
            sd[f"{part}.{k}"] = v
    extra = [k for k in obj if k not in ("image_proj", "ip_adapter")]
    if extra:
        print(f"note: top-level entries ignored: {extra}")
    return sd, {}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("adapter")
    ap.add_argument("--forward", action="store_true")
    ap.add_argument("--head-dims", default=None, help="projector,resampler head sizes (override metadata)")
    args = ap.parse_args()

    sd, meta = read(args.adapter)
    if args.head_dims:
        hd, rhd = args.head_dims.split(",")
        meta["ic.head_dim"], meta["ic.resampler_head_dim"] = hd, rhd
    try:
        c = config_from_state_dict(sd, meta)
    except KeyError as e:
        print(f"FAIL {args.adapter}: not an InstantCharacter adapter (no tensor {e})")
        return 1
    if c.inner_dim % c.attention_head_dim or c.dim % c.dim_head:
        print(f"FAIL {args.adapter}: widths {c.inner_dim} / {c.dim} do not split into heads of "
              f"{c.attention_head_dim} / {c.dim_head}; pass --head-dims")
        return 1
    with torch.device("meta"):
        model = ICAdapter(c)
    try:
        res = model.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as e:
        print(f"FAIL {args.adapter}: strict load into the PyTorch transcription failed:\n{e}")
        return 1
    n_proj = sum(v.numel() for k, v in sd.items() if k.startswith("image_proj."))
    n_ip = sum(v.numel() for k, v in sd.items() if k.startswith("ip_adapter."))
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in sd.values()})
    print(f"OK {args.adapter}: {len(sd)} tensors, {n_proj + n_ip:,} parameters (image_proj {n_proj:,}, "
          f"ip_adapter {n_ip:,}, {c.n_ip} IP modules), dtypes {dtypes}; strict load: {res}")
    print(f"   config: {c}")

    if args.forward:
        model = model.float()
        torch.manual_seed(0)
        L = 4
        with torch.no_grad():
            tokens, temb = model.image_proj(torch.randn(1, 3 * L, c.cross_attention_dim), torch.randn(1, L, c.inner_dim),
                                            torch.randn(1, 4 * L, c.cross_attention_dim), torch.tensor([500.0]))
            ok = bool(torch.isfinite(tokens).all() and torch.isfinite(temb).all())
            for ip in model.ip_adapter:
                o = ip.ip_branch(torch.randn(1, 8, c.ip_hidden), tokens)
                ok = ok and bool(torch.isfinite(o).all())
        print(f"   forward: tokens {tuple(tokens.shape)}, temb {tuple(temb.shape)}, {c.n_ip} IP branches: "
              f"{'finite' if ok else 'NOT FINITE'}")
        if not ok:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

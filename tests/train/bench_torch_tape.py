#!/usr/bin/env python3
"""bench_torch_tape.py — the "saved activations" figure of scripts/bench_train_torch.py (the PyTorch
twin of `cameo bench train`) counts activations only, as cameo's does:
  - weights the tape saves (a frozen Linear's weight, kept for its input's gradient) are left out,
    frozen ones as well as trainable ones;
  - it is one micro-step's tape: the same with grad_accum 2 as with 1 at the same micro-batch.
And the twin's FLUX splits RoPE over its axes as cameo's does.
Exits 77 (skipped) without torch / diffusers / transformers."""
import contextlib
import io
import json
import os
import sys

try:
    import torch
    import diffusers  # noqa: F401
    import transformers  # noqa: F401
except ImportError:
    print("note: no torch / diffusers / transformers for python3: skipped")
    raise SystemExit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import bench_train_torch as btt  # noqa: E402

fails = 0


def check(ok, msg):
    global fails
    if not ok:
        print("FAIL:", msg)
        fails += 1


# a trainable layer under a frozen one: the tape keeps x (for the trainable weight's gradient) and the
# frozen weight (for the gradient of the trainable layer's output); only x is an activation
torch.manual_seed(0)
train = torch.nn.Linear(8, 16, bias=False)
frozen = torch.nn.Linear(16, 256)
frozen.requires_grad_(False)
frozen.register_buffer("scale", torch.ones(256))
x = torch.randn(4, 8)


def run():
    return (frozen(train(x)) * frozen.scale).square().sum()


weights = btt.weight_storages([train, frozen])
b, loss = btt.tape_bytes(weights, run)
loss.backward()  # the graph is whole
want = x.numel() * 4 + 4 * 256 * 4  # x and the product's input (frozen(...) output, [4, 256])
check(b <= want and b >= x.numel() * 4, f"tape of the two-layer net: {b} bytes, want at most {want} (x and one "
      f"[4, 256] activation), not the frozen weight ({frozen.weight.numel() * 4} bytes)")
check(btt.tape_bytes(weights, run)[0] == b, "a second measurement differs")

# the twin's FLUX splits RoPE over the axes as cameo's (models/flux_config.c flux_default_axes:
# 2·(7·D/32) for each spatial axis, the rest for the first): (4, 6, 6) at the tiny head dim 16
for hd, want_axes in ((16, (4, 6, 6)), (32, (4, 14, 14)), (128, (16, 56, 56))):
    dd = dict(flux_double=1, flux_single=1, flux_heads=1, flux_head_dim=hd, vision_hidden=16, vision_layers=1,
              vision_heads=1, vision_patch=7, vision_image=14, text_dim=16, text_len=4, pooled_dim=16, proj_heads=1,
              proj_head_dim=16, proj_layers=1, proj_queries=2, proj_depth=1, vae_channels=8, latent_channels=4)
    axes = tuple(btt.build(dd)["flux"].pos_embed.axes_dim)
    check(axes == want_axes, f"FLUX RoPE axes at head dim {hd}: {axes}, cameo's {want_axes}")

# the whole twin at the smallest dims: one micro-step's tape whatever grad_accum
dims = dict(flux_double=1, flux_single=1, flux_heads=2, flux_head_dim=16, vision_hidden=32, vision_layers=1, vision_heads=2,
            vision_patch=7, vision_image=14, text_dim=32, text_len=8, pooled_dim=16, proj_heads=2, proj_head_dim=16,
            proj_layers=1, proj_queries=4, proj_depth=1, vae_channels=8, latent_channels=16)


def twin(ga):
    sys.argv = ["bench_train_torch.py", "--threads", "1", "--steps", "1", "--warmup", "0", "--batch", "1", "--grad-accum",
                str(ga), "--height", "32", "--width", "32", "--ref", "14", "--dims", json.dumps(dims)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        btt.main()
    return json.loads(out.getvalue())


one, two = twin(1), twin(2)
s1, s2 = one["saved_activation_bytes"], two["saved_activation_bytes"]
frozen_bytes = 4 * one["params_frozen"]
check(s1 > 0 and abs(s2 - s1) < 0.1 * s1, f"saved activations {s2} bytes with grad_accum 2 against {s1} with 1: one "
      "micro-step's tape either way")
print(f"twin: saved activations {s1} bytes (grad_accum 1), {s2} (2); frozen weights {frozen_bytes}")
print("bench_torch_tape: %s" % ("ok" if not fails else f"{fails} failure(s)"))
sys.exit(1 if fails else 0)

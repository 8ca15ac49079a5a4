#!/usr/bin/env python3
"""bench_torch_tape.py — the "saved activations" figure of scripts/bench_train_torch.py (the PyTorch
twin of `cameo bench train`) counts activations only, as cameo's does:
  - weights the tape saves (a frozen Linear's weight, kept for its input's gradient) are left out,
    frozen ones as well as trainable ones;
  - it is one micro-step's tape: the same with grad_accum 2 as with 1 at the same micro-batch.
And the twin's FLUX splits RoPE over its axes as cameo's does, and it recomputes (train.recompute),
averages (optimizer.ema) and leaves gradients unclipped (grad_clip 0) as cameo's step.
Exits 77 (skipped) without torch / diffusers / transformers."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twin_check import Checks, btt, run_twin, torch  # noqa: E402  (exits 77 without torch)

check = Checks("bench_torch_tape")


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
    return run_twin(["--threads", "1", "--steps", "1", "--warmup", "0", "--batch", "1", "--grad-accum", str(ga), "--height",
                     "32", "--width", "32", "--ref", "14", "--dims", json.dumps(dims)], lambda opt: None)


one, two = twin(1), twin(2)
s1, s2 = one["saved_activation_bytes"], two["saved_activation_bytes"]
frozen_bytes = 4 * one["params_frozen"]
check(s1 > 0 and abs(s2 - s1) < 0.1 * s1, f"saved activations {s2} bytes with grad_accum 2 against {s1} with 1: one "
      "micro-step's tape either way")
print(f"twin: saved activations {s1} bytes (grad_accum 1), {s2} (2); frozen weights {frozen_bytes}")

# the twin does cameo's step: train.recompute checkpoints the first N FLUX blocks (same gradients,
# a smaller tape), optimizer.ema keeps an average, grad_clip 0 leaves the gradients unclipped
def flux_grads(M, recompute):
    torch.manual_seed(1)
    f, d = M["flux"], dims
    n = btt.recompute_blocks(f, recompute)
    x, txt = torch.randn(1, 16, 4 * d["latent_channels"]), torch.randn(1, d["text_len"], d["text_dim"])
    tok = torch.randn(1, d["proj_queries"], d["text_dim"], requires_grad=True)
    ids = torch.zeros(16, 3)
    ids[:, 1], ids[:, 2] = torch.arange(16) // 4, torch.arange(16) % 4

    def run():
        return f(hidden_states=x, encoder_hidden_states=txt, pooled_projections=torch.randn(1, d["pooled_dim"]),
                 timestep=torch.tensor([0.5]), img_ids=ids, txt_ids=torch.zeros(d["text_len"], 3), guidance=torch.ones(1),
                 joint_attention_kwargs=btt.ip_kwargs(d["text_len"], tok, 1.0), return_dict=False)[0].square().mean()
    b, loss = btt.tape_bytes(btt.weight_storages([f, M["procs"]]), run)
    loss.backward()
    return n, b, [tok.grad] + [p.grad for p in M["procs"].parameters()]


torch.manual_seed(0)
M = btt.build(dims)
n0, b0, g0 = flux_grads(M, 0)
for p in M["procs"].parameters():
    p.grad = None
n1, b1, g1 = flux_grads(M, -1)
check(n0 == 0 and n1 == 2, f"recompute_blocks: {n0} blocks for 0, {n1} for -1 (all of 1 double + 1 single)")
check(all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(g0, g1)), "gradients with every block recomputed differ")
check(b1 < b0, f"the tape with every block recomputed ({b1} bytes) is not smaller than without ({b0})")

seen = {}


def spy(opt):
    seen["grad"] = max(float(q.grad.abs().max()) for g in opt.param_groups for q in g["params"] if q.grad is not None)


j = run_twin(["--threads", "1", "--steps", "1", "--warmup", "0", "--batch", "1", "--height", "32", "--width", "32", "--ref",
              "14", "--dims", json.dumps(dims), "--grad-clip", "0", "--ema", "0.9", "--recompute", "1"], spy)
check(seen.get("grad", 0) > 0, "grad_clip 0 (no clipping): the twin's AdamW found every gradient zero")
check(j.get("recompute_blocks") == 1 and j.get("ema") == 0.9, f"the twin says recompute {j.get('recompute_blocks')}, ema "
      f"{j.get('ema')}: want 1 and 0.9")

check.exit()

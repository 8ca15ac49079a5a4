#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention at `cameo bench gpu`'s attention shapes, bf16 on cuda:0:
one JSON line {version, fwd_ms, bwd_ms, siglip_fwd_ms}. Run by train/bench.c; exits 1 without
torch or a GPU. Timing: CUDA events around `iters` calls after `warmup` calls."""
import argparse, json, sys
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(1)
ap = argparse.ArgumentParser()
ap.add_argument("--heads", type=int, default=24)
ap.add_argument("--tokens", type=int, default=4608)
ap.add_argument("--dim", type=int, default=128)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--iters", type=int, default=10)
a = ap.parse_args()
if not torch.cuda.is_available():
    sys.exit(1)
dev = torch.device("cuda:0")

def timed(fn):
    for _ in range(a.warmup):
        fn()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(a.iters):
        fn()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) / a.iters

def inputs(B, H, L, D, grad):
    g = torch.Generator(device=dev).manual_seed(0)
    return [torch.randn(B, H, L, D, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_(grad) for _ in range(3)]

q, k, v = inputs(1, a.heads, a.tokens, a.dim, True)
do = torch.randn_like(q)
with torch.no_grad():
    fwd = timed(lambda: F.scaled_dot_product_attention(q, k, v))
o = F.scaled_dot_product_attention(q, k, v)
bwd = timed(lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True))
q2, k2, v2 = inputs(8, 16, 729, 72, False)  # SigLIP so400m: 729 tokens, 16 heads x 72
with torch.no_grad():
    sig = timed(lambda: F.scaled_dot_product_attention(q2, k2, v2))
print(json.dumps({"version": torch.__version__, "fwd_ms": fwd, "bwd_ms": bwd, "siglip_fwd_ms": sig}))

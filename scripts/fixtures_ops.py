#!/usr/bin/env python3
"""Writes tests/fixtures/ops/ops.safetensors: for each op, inputs, the upstream gradient,
PyTorch's output and input gradients (f32). tests/core/test_ops_parity.c replays them.

Key layout: "<case>.in<i>", "<case>.gout", "<case>.out", "<case>.gin<i>" (absent when the
input takes no gradient). Regenerate: python3 scripts/fixtures_ops.py (needs torch, safetensors,
diffusers for the RoPE and timestep references)."""
import math, os, torch
import torch.nn.functional as F
from safetensors.torch import save_file
from diffusers.models.embeddings import get_timestep_embedding, apply_rotary_emb

torch.manual_seed(0)
out = {}

def r(*s, scale=1.0, shift=0.0):
    return (torch.randn(*s) * scale + shift).float().requires_grad_(True)

def case(name, fn, ins, nograd=()):
    y = fn(*ins)
    g = torch.randn_like(y)
    y.backward(g)
    for i, x in enumerate(ins):
        out[f"{name}.in{i}"] = x.detach().clone().contiguous()
        if i not in nograd and x.grad is not None:
            out[f"{name}.gin{i}"] = x.grad.detach().clone().contiguous()
    out[f"{name}.out"] = y.detach().clone().contiguous()
    out[f"{name}.gout"] = g.contiguous()

case("add", lambda a, b: a + b, [r(2, 3, 4), r(3, 1)])
case("sub", lambda a, b: a - b, [r(2, 3, 4), r(4)])
case("mul", lambda a, b: a * b, [r(2, 3, 4), r(2, 1, 4)])
case("div", lambda a, b: a / b, [r(3, 4), r(4, scale=0.2, shift=2.0)])
case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [r(4, 16, scale=2)])
case("gelu_erf", lambda x: F.gelu(x), [r(4, 16, scale=2)])
case("silu", F.silu, [r(4, 16, scale=2)])
case("geglu", lambda x: (lambda a, g: a * F.gelu(g))(*x.chunk(2, -1)), [r(3, 2, 16)])
case("swiglu", lambda x: (lambda a, g: F.silu(a) * g)(*x.chunk(2, -1)), [r(3, 2, 16)])
case("sum", lambda x: x.sum(dim=(0, 2)), [r(2, 3, 4)])
case("mean", lambda x: x.mean(dim=-1, keepdim=True), [r(2, 3, 4)])
case("matmul", lambda a, b: a @ b, [r(2, 5, 7), r(2, 7, 3)])
case("matmul_tb", lambda a, b: a @ b.t(), [r(2, 5, 7), r(3, 7)])
case("linear", lambda x, w, b: F.linear(x, w, b), [r(2, 5, 12), r(9, 12), r(9)])
case("layernorm", lambda x, w, b: F.layer_norm(x, (16,), w, b, 1e-6), [r(3, 5, 16, shift=0.5), r(16, shift=1.0), r(16)])
case("layernorm_noaffine", lambda x: F.layer_norm(x, (16,), None, None, 1e-6), [r(3, 5, 16, shift=0.5)])
# diffusers RMSNorm: x * rsqrt(mean(x^2) + eps) * w
case("rmsnorm", lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w, [r(3, 4, 16), r(16, shift=1.0)])
# InstantCharacter RMSNorm: scale * x / (||x|| d^-1/2 + eps)
case("rmsnorm_ic", lambda x, w: w * x / (x.norm(2, dim=-1, keepdim=True) * 16 ** -0.5 + 1e-6), [r(3, 4, 16), r(16, shift=1.0)])
case("groupnorm", lambda x, w, b: F.group_norm(x, 4, w, b, 1e-6), [r(2, 8, 3, 5), r(8, shift=1.0), r(8)])
case("softmax", lambda x: torch.softmax(x, -1), [r(4, 9, scale=2)])
mask = torch.randn(1, 2, 6, 10)
case("sdpa", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), [r(2, 2, 6, 16), r(2, 2, 10, 16), r(2, 2, 10, 16), mask.requires_grad_(False)], nograd=(3,))
case("sdpa_nomask", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [r(1, 3, 7, 8), r(1, 3, 7, 8), r(1, 3, 7, 8)])
# FLUX RoPE: cos/sin repeat-interleaved per pair
pos = torch.arange(5, dtype=torch.float64)
freqs = 1.0 / (10000 ** (torch.arange(0, 8, 2, dtype=torch.float64) / 8))
ang = torch.outer(pos, freqs)
cos = ang.cos().repeat_interleave(2, dim=1).float()
sin = ang.sin().repeat_interleave(2, dim=1).float()
case("rope", lambda x, c, s: apply_rotary_emb(x, (c, s), use_real=True, use_real_unbind_dim=-1), [r(2, 3, 5, 8), cos.requires_grad_(False), sin.requires_grad_(False)], nograd=(1, 2))
case("modulate", lambda x, sc, sh: x * (1 + sc[:, None]) + sh[:, None], [r(2, 5, 8), r(2, 8), r(2, 8)])
case("timestep", lambda t: get_timestep_embedding(t, 32, flip_sin_to_cos=True, downscale_freq_shift=0), [torch.tensor([1.0, 250.5, 999.0]).requires_grad_(True)])
case("timestep_shift1", lambda t: get_timestep_embedding(t, 16, flip_sin_to_cos=False, downscale_freq_shift=1), [torch.tensor([3.0, 700.0]).requires_grad_(True)])
case("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [r(2, 3, 9, 8), r(4, 3, 3, 3), r(4)])
case("conv2d_patch", lambda x, w, b: F.conv2d(x, w, b, stride=4), [r(1, 3, 14, 14), r(6, 3, 4, 4), r(6)])
case("bicubic_down", lambda x: F.interpolate(x, size=(5, 5), mode="bicubic", align_corners=False), [r(1, 3, 9, 9)])
case("bicubic_up", lambda x: F.interpolate(x, size=(7, 11), mode="bicubic", align_corners=False), [r(2, 2, 4, 5)])
ids = torch.tensor([[3, 0, 3], [5, 1, 2]], dtype=torch.int32)
case("embedding", lambda t, i: F.embedding(i.long(), t), [r(6, 4), ids], nograd=(1,))
case("mse", lambda a, b: F.mse_loss(a, b), [r(3, 7), r(3, 7)])
# LayerNorm fused with the adaLN modulation (op_layernorm_modulate); appended last so the cases above keep their draws
case("layernorm_modulate", lambda x, w, b, sc, sh: F.layer_norm(x, (16,), w, b, 1e-6) * (1 + sc[:, None]) + sh[:, None],
     [r(2, 5, 16, shift=0.5), r(16, shift=1.0), r(16), r(2, 16, scale=0.5), r(2, 16)])
case("layernorm_modulate_noaffine", lambda x, sc, sh: F.layer_norm(x, (16,), None, None, 1e-6) * (1 + sc[:, None]) + sh[:, None],
     [r(3, 4, 16, scale=2.0), r(3, 16, scale=0.5), r(3, 16)])

path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "ops", "ops.safetensors")
save_file(out, path, metadata={"generator": "scripts/fixtures_ops.py", "torch": torch.__version__})
print(f"wrote {len(out)} tensors to {path} ({os.path.getsize(path)} bytes)")

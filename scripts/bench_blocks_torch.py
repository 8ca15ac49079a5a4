#!/usr/bin/env python3
"""bench_blocks_torch.py — the PyTorch eager twin of `cameo bench blocks` (train/bench_blocks.c).

One diffusers FluxTransformerBlock and one FluxSingleTransformerBlock, each with the
InstantCharacter IP processor (scripts/ic_reference_ip.py, the transcription the C fixtures come
from), at the same dims, dtype and device as the C run. FLUX weights are frozen
(requires_grad False: dX only), the IP processors train; the block inputs and the projector
tokens require grad, silu(temb)'s source temb does not — as inside the training step. Attention
is whatever F.scaled_dot_product_attention picks (flash / memory-efficient on CUDA), as eager
PyTorch runs it.

Three passes per block, each the median of --iters after --warmup, the device synchronised:
  fwd         forward with autograd recording
  fwdbwd      forward + backward from a random output gradient
  recompute   the same through torch.utils.checkpoint (use_reentrant=False), as per-block
              activation checkpointing runs it in a training step
and the peak of torch.cuda.max_memory_allocated above the weights and inputs (CUDA only).

Prints one JSON line:
  {"version", "device", "dtype", "double": {"fwd_ms", "fwdbwd_ms", "recompute_ms",
   "fwdbwd_peak_bytes", "recompute_peak_bytes"}, "single": {...}}
Exits 0 silently when torch or diffusers is missing (the C side prints n/a).

By hand, from the repository root:
  python3 scripts/bench_blocks_torch.py --device cuda:0 --dtype bf16          # 512² FLUX.1-dev shapes
  python3 scripts/bench_blocks_torch.py --device cpu --dtype f32 --tokens-img 256 --tokens-txt 64
"""
import argparse
import inspect
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torch.utils.checkpoint
    import diffusers
    from diffusers.models.transformers.transformer_flux import FluxSingleTransformerBlock, FluxTransformerBlock
    try:  # its home since diffusers 0.35; models.embeddings before
        from diffusers.models.transformers.transformer_flux import FluxPosEmbed
    except ImportError:
        from diffusers.models.embeddings import FluxPosEmbed
except ImportError:
    raise SystemExit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ic_reference_ip import FluxIPAttnProcessor, ip_kwargs  # noqa: E402


def rope_axes(d):
    """FLUX's (16, 56, 56) at head dim 128, scaled as models/flux_config.c flux_default_axes."""
    if d == 128:
        return (16, 56, 56)
    a = 2 * (7 * d // 32)
    return (d - 2 * a, a, a)


def grid(n):
    """The patch grid of n image tokens, as square as n allows (train/bench_blocks.c grid_of)."""
    h = int(n ** 0.5)
    while h > 1 and n % h:
        h -= 1
    return h, n // h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tokens-txt", type=int, default=512)
    ap.add_argument("--tokens-img", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=3072)
    ap.add_argument("--heads", type=int, default=24)
    ap.add_argument("--mlp", type=int, default=0, help="MLP width (default 4 x hidden)")
    ap.add_argument("--ip-tokens", type=int, default=1024)
    ap.add_argument("--ip-dim", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    dev = torch.device(a.device)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    if dev.type == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.set_device(dev)
    torch.manual_seed(a.seed)
    B, Lt, N, C, H = a.batch, a.tokens_txt, a.tokens_img, a.hidden, a.heads
    D, F = C // H, (a.mlp or 4 * C)

    with torch.device(dev):  # weights made on the device: fast at 10^8 parameters
        dbl = FluxTransformerBlock(dim=C, num_attention_heads=H, attention_head_dim=D)
        sgl = FluxSingleTransformerBlock(dim=C, num_attention_heads=H, attention_head_dim=D, mlp_ratio=F / C)
        procs = [FluxIPAttnProcessor(C, a.ip_dim, head_dim=D), FluxIPAttnProcessor(C, a.ip_dim, head_dim=D)]
    for m in (dbl, sgl, *procs):
        m.to(dtype=dt)
    dbl.requires_grad_(False)  # frozen FLUX: no dW
    sgl.requires_grad_(False)
    dbl.attn.set_processor(procs[0])
    sgl.attn.set_processor(procs[1])

    gh, gw = grid(N)
    ids = torch.zeros(Lt + N, 3, device=dev)
    ids[Lt:, 1] = torch.arange(gh, device=dev).repeat_interleave(gw).float()
    ids[Lt:, 2] = torch.arange(gw, device=dev).repeat(gh).float()
    rope = FluxPosEmbed(theta=10000, axes_dim=list(rope_axes(D)))(ids)

    def rnd(*shape, std=1.0, grad=False):
        return (torch.randn(*shape, device=dev, dtype=torch.float32) * std).to(dt).requires_grad_(grad)

    x, c = rnd(B, N, C, grad=True), rnd(B, Lt, C, grad=True)  # block input: image and text streams
    temb = rnd(B, C)                                          # needs no gradient, as in the step
    tok = rnd(B, a.ip_tokens, a.ip_dim, grad=True)            # the projector's tokens
    gx, gc = rnd(B, N, C, std=1e-3), rnd(B, Lt, C, std=1e-3)
    split_single = "encoder_hidden_states" in inspect.signature(FluxSingleTransformerBlock.forward).parameters

    def run_double(x, c, tok):
        enc, hid = dbl(hidden_states=x, encoder_hidden_states=c, temb=temb, image_rotary_emb=rope,
                       joint_attention_kwargs=ip_kwargs(Lt, tok, 1.0))
        return enc, hid

    def run_single(x, c, tok):
        kw = ip_kwargs(Lt, tok, 1.0)
        if split_single:  # diffusers >= 0.35: the block concatenates [txt; img] itself
            return sgl(hidden_states=x, encoder_hidden_states=c, temb=temb, image_rotary_emb=rope, joint_attention_kwargs=kw)
        h = sgl(hidden_states=torch.cat([c, x], dim=1), temb=temb, image_rotary_emb=rope, joint_attention_kwargs=kw)
        return h[:, :Lt], h[:, Lt:]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def clear():
        for t in (x, c, tok, *[p for q in procs for p in q.parameters()]):
            t.grad = None

    def one(fn, mode):
        if mode == "recompute":
            enc, hid = torch.utils.checkpoint.checkpoint(fn, x, c, tok, use_reentrant=False)
        else:
            enc, hid = fn(x, c, tok)
        if mode != "fwd":
            torch.autograd.backward([hid, enc], [gx, gc])
        del enc, hid

    def timed(fn, mode):
        ts, peak = [], 0
        for i in range(a.warmup + a.iters):
            sync()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            t0 = time.perf_counter()
            one(fn, mode)
            sync()
            t = time.perf_counter() - t0
            if cuda:
                peak = max(peak, torch.cuda.max_memory_allocated() - base)
            clear()
            if i >= a.warmup:
                ts.append(t)
        return 1e3 * statistics.median(ts), peak

    res = {"version": f"{torch.__version__} / diffusers {diffusers.__version__}", "device": str(dev), "dtype": a.dtype}
    for name, fn in (("double", run_double), ("single", run_single)):
        fwd, _ = timed(fn, "fwd")
        fb, pfb = timed(fn, "fwdbwd")
        rc, prc = timed(fn, "recompute")
        res[name] = {"fwd_ms": fwd, "fwdbwd_ms": fb, "recompute_ms": rc, "fwdbwd_peak_bytes": pfb,
                     "recompute_peak_bytes": prc}
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()

"""fixtures_ic.py — writes tests/fixtures/ic/ for the C projector tests (deterministic, seeded).

    python3 scripts/fixtures_ic.py [--out tests/fixtures/ic]

Files (all f32 safetensors):
  weights.safetensors  the tiny projector (IC_TINY in scripts/ic_reference.py) under the published
                       keys image_proj.*; metadata ic.head_dim / ic.resampler_head_dim give the head
                       sizes, which shapes cannot tell.
  io.safetensors       inputs low_res_shallow [B,3L,C], low_res_deep [B,L,C], high_res_deep [B,4L,C],
                       t [B] (in [0,1000], as the pipeline feeds 1000*sigma); outputs tokens [B,Q,out],
                       temb [B,dim]; the loss weights w_tokens, w_temb.
  grads.safetensors    gradients of loss = sum(tokens*w_tokens) + sum(temb*w_temb) with respect to every
                       projector parameter (same key as the parameter) and to the three feature inputs
                       (input.low_res_shallow, input.low_res_deep, input.high_res_deep).
The reference runs in float64 (weights and inputs are f32 values), so the fixture holds the exact
answer and a C f32 run differs only by its own rounding. diffusers' Timesteps computes the sinusoid
in f32 even in a float64 model, as the C op does.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ic_reference import IC_TINY, CrossLayerCrossScaleProjector, config_metadata  # noqa: E402

B, L = 2, 9  # 2 samples, 3x3 token grid per image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/ic")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    c = IC_TINY
    torch.manual_seed(1234)
    m = CrossLayerCrossScaleProjector(c)
    # perturb everything (norm weights around 1, biases around 0) so no parameter is trivial
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("latents"):
                continue
            if p.ndim == 1:
                base = 1.0 if ("norm" in name and name.endswith("weight")) or ".1.0.weight" in name else 0.0
                p.copy_(base + 0.2 * torch.randn_like(p))
            else:
                p.add_(0.05 * torch.randn_like(p))
    m = m.double()

    C = c.inner_dim
    inputs = {
        "low_res_shallow": torch.randn(B, 3 * L, C),
        "low_res_deep": torch.randn(B, L, C),
        "high_res_deep": torch.randn(B, 4 * L, C),
    }
    t = torch.tensor([250.5, 937.0], dtype=torch.float32)
    xs = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    tokens, temb = m(xs["low_res_shallow"], xs["low_res_deep"], xs["high_res_deep"], t.double())
    w_tokens = torch.randn(tokens.shape)
    w_temb = torch.randn(temb.shape)
    loss = (tokens * w_tokens.double()).sum() + (temb * w_temb.double()).sum()
    loss.backward()

    f32 = lambda x: x.detach().float().contiguous()  # noqa: E731
    weights = {"image_proj." + k: f32(v) for k, v in m.state_dict().items()}
    grads = {"image_proj." + k: f32(p.grad) for k, p in m.named_parameters()}
    grads.update({"input." + k: f32(v.grad) for k, v in xs.items()})
    io = dict(inputs)
    io.update({"t": t, "tokens": f32(tokens), "temb": f32(temb), "w_tokens": w_tokens, "w_temb": w_temb,
               "loss": torch.tensor([loss.item()], dtype=torch.float32)})
    save_file(weights, os.path.join(args.out, "weights.safetensors"), metadata=config_metadata(c))
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(args.out, "io.safetensors"))
    save_file(grads, os.path.join(args.out, "grads.safetensors"))
    n = sum(v.numel() for v in weights.values())
    print(f"wrote {args.out}: {len(weights)} tensors, {n} params; tokens {tuple(tokens.shape)}, "
          f"temb {tuple(temb.shape)}, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference fixtures for the FLUX VAE (diffusers AutoencoderKL, spec §5.7) at a tiny size with
the same code path: 2 levels (a shortcut conv where channels change, none where they do not, an
asymmetric-pad downsample and a nearest upsample), 2 resnets per level, mid-block attention, no
quant convs, GroupNorm with 4 groups, latent 4 channels.

Writes tests/fixtures/vae/weights.safetensors (diffusers key names) and io.safetensors:
  x [1,3,16,16] -> mean, logvar [1,4,8,8]; sample = mean + exp(logvar/2) * noise;
  latent = (mean - shift) * scale; decoded = decode(latent / scale + shift);
  grad_x = d sum(mean * w_mean + sample * w_sample) / dx; grad_latent = d sum(decoded * w_dec) / d latent
Run from the repository root: python3 scripts/fixtures_vae.py
"""
import os
import torch
from safetensors.torch import save_file
from diffusers import AutoencoderKL

OUT = "tests/fixtures/vae"
CFG = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
           down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
           layers_per_block=2, norm_num_groups=4, act_fn="silu", use_quant_conv=False,
           use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159, mid_block_add_attention=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    vae = AutoencoderKL(**CFG).eval()
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in sorted(vae.named_parameters()):
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:  # fan-in scaled so activations stay O(1) through the depth
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    sd = {k: v.contiguous() for k, v in vae.state_dict().items()}
    save_file(sd, f"{OUT}/weights.safetensors",
              metadata={"scaling_factor": "0.3611", "shift_factor": "0.1159", "norm_num_groups": "4"})

    gi = torch.Generator().manual_seed(5)
    x = (torch.rand(1, 3, 16, 16, generator=gi) * 2 - 1).requires_grad_(True)
    moments = vae.encoder(x)
    mean, logvar = moments.chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    noise = torch.randn(mean.shape, generator=gi)
    sample = mean + torch.exp(0.5 * logvar) * noise
    # cross-check against diffusers' own DiagonalGaussianDistribution
    dist = vae.encode(x).latent_dist
    assert torch.allclose(dist.mean, mean) and torch.allclose(dist.logvar, logvar)
    w_mean = torch.randn(mean.shape, generator=gi)
    w_sample = torch.randn(mean.shape, generator=gi)
    ((mean * w_mean).sum() + (sample * w_sample).sum()).backward()
    latent = ((mean - CFG["shift_factor"]) * CFG["scaling_factor"]).detach()

    lat = latent.clone().requires_grad_(True)
    dec = vae.decode(lat / CFG["scaling_factor"] + CFG["shift_factor"]).sample
    w_dec = torch.randn(dec.shape, generator=gi)
    (dec * w_dec).sum().backward()
    save_file({"x": x.detach(), "mean": mean.detach().contiguous(), "logvar": logvar.detach().contiguous(),
               "noise": noise, "sample": sample.detach().contiguous(), "latent": latent.contiguous(),
               "w_mean": w_mean, "w_sample": w_sample, "grad_x": x.grad.contiguous(),
               "decoded": dec.detach().contiguous(), "w_decoded": w_dec, "grad_latent": lat.grad.contiguous()},
              f"{OUT}/io.safetensors")
    print("mean std", mean.std().item(), "logvar range", logvar.min().item(), logvar.max().item(),
          "decoded std", dec.std().item())
    for f in sorted(os.listdir(OUT)):
        print(f"{OUT}/{f}", os.path.getsize(f"{OUT}/{f}"))


if __name__ == "__main__":
    main()

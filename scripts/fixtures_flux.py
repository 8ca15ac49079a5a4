"""fixtures_flux.py — reference fixtures for the C FLUX transformer and the InstantCharacter IP
attention (tests/models/test_flux*.c). Deterministic (seeded); CPU; f32.

Builds a tiny diffusers FluxTransformer2DModel (2 double + 2 single blocks, 2 heads x 16,
axes (4, 6, 6), 4 latent channels packed to 16, joint 32, pooled 16, guidance embeds) with
scripts/ic_reference_ip.py's processors installed (random nonzero IP weights), and writes to
tests/fixtures/flux/:
  flux_tiny.safetensors      FLUX weights, diffusers names
  flux_tiny_bfl.safetensors  the same weights in the single-file BFL layout (fused qkv / linear1,
                             final adaLN halves swapped, "model.diffusion_model." prefix on none)
  ip_tiny.safetensors        ip_adapter.{i}.* (i = 0..3)
  io.safetensors             inputs, outputs and gradients (see the names below)

Run: python3 scripts/fixtures_flux.py
"""
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ic_reference_ip import install_ip_processors, ip_kwargs  # noqa: E402
from diffusers import FluxTransformer2DModel  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'flux')

B, LAT_C, LAT_H, LAT_W = 2, 4, 8, 12       # latent [B, 4, 8, 12] -> grid 4 x 6 = 24 tokens of 16
LT, LIP, IP_DIM = 8, 6, 24                 # text tokens, IP tokens, IP token width
IP_SCALE = 0.9


def tiny_config():
    return dict(patch_size=1, in_channels=4 * LAT_C, out_channels=None, num_layers=2, num_single_layers=2,
                attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16,
                guidance_embeds=True, axes_dims_rope=(4, 6, 6))


def pack(z):
    b, c, h, w = z.shape
    return z.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def img_ids(gh, gw):
    ids = torch.zeros(gh, gw, 3)
    ids[..., 1] = torch.arange(gh)[:, None]
    ids[..., 2] = torch.arange(gw)[None, :]
    return ids.reshape(gh * gw, 3)


def to_bfl(sd, n_double, n_single):
    """diffusers -> single-file BFL names (the inverse of diffusers'
    convert_flux_transformer_checkpoint_to_diffusers)."""
    o = {}
    top = {'x_embedder': 'img_in', 'context_embedder': 'txt_in',
           'time_text_embed.timestep_embedder.linear_1': 'time_in.in_layer',
           'time_text_embed.timestep_embedder.linear_2': 'time_in.out_layer',
           'time_text_embed.guidance_embedder.linear_1': 'guidance_in.in_layer',
           'time_text_embed.guidance_embedder.linear_2': 'guidance_in.out_layer',
           'time_text_embed.text_embedder.linear_1': 'vector_in.in_layer',
           'time_text_embed.text_embedder.linear_2': 'vector_in.out_layer',
           'proj_out': 'final_layer.linear'}
    for d, b in top.items():
        for s in ('weight', 'bias'):
            o[f'{b}.{s}'] = sd[f'{d}.{s}']
    for s in ('weight', 'bias'):
        scale, shift = sd[f'norm_out.linear.{s}'].chunk(2, dim=0)
        o[f'final_layer.adaLN_modulation.1.{s}'] = torch.cat([shift, scale], dim=0)
    for i in range(n_double):
        p, q = f'transformer_blocks.{i}.', f'double_blocks.{i}.'
        plain = {'norm1.linear': 'img_mod.lin', 'norm1_context.linear': 'txt_mod.lin',
                 'attn.to_out.0': 'img_attn.proj', 'attn.to_add_out': 'txt_attn.proj',
                 'ff.net.0.proj': 'img_mlp.0', 'ff.net.2': 'img_mlp.2',
                 'ff_context.net.0.proj': 'txt_mlp.0', 'ff_context.net.2': 'txt_mlp.2'}
        for d, b in plain.items():
            for s in ('weight', 'bias'):
                o[f'{q}{b}.{s}'] = sd[f'{p}{d}.{s}']
        for s in ('weight', 'bias'):
            o[f'{q}img_attn.qkv.{s}'] = torch.cat([sd[f'{p}attn.to_{c}.{s}'] for c in 'qkv'], dim=0)
            o[f'{q}txt_attn.qkv.{s}'] = torch.cat([sd[f'{p}attn.add_{c}_proj.{s}'] for c in 'qkv'], dim=0)
        o[f'{q}img_attn.norm.query_norm.scale'] = sd[f'{p}attn.norm_q.weight']
        o[f'{q}img_attn.norm.key_norm.scale'] = sd[f'{p}attn.norm_k.weight']
        o[f'{q}txt_attn.norm.query_norm.scale'] = sd[f'{p}attn.norm_added_q.weight']
        o[f'{q}txt_attn.norm.key_norm.scale'] = sd[f'{p}attn.norm_added_k.weight']
    for i in range(n_single):
        p, q = f'single_transformer_blocks.{i}.', f'single_blocks.{i}.'
        for s in ('weight', 'bias'):
            o[f'{q}modulation.lin.{s}'] = sd[f'{p}norm.linear.{s}']
            o[f'{q}linear1.{s}'] = torch.cat([sd[f'{p}attn.to_q.{s}'], sd[f'{p}attn.to_k.{s}'],
                                             sd[f'{p}attn.to_v.{s}'], sd[f'{p}proj_mlp.{s}']], dim=0)
            o[f'{q}linear2.{s}'] = sd[f'{p}proj_out.{s}']
        o[f'{q}norm.query_norm.scale'] = sd[f'{p}attn.norm_q.weight']
        o[f'{q}norm.key_norm.scale'] = sd[f'{p}attn.norm_k.weight']
    assert sum(v.numel() for v in o.values()) == sum(v.numel() for v in sd.values())
    return {k: v.contiguous() for k, v in o.items()}


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    cfg = tiny_config()
    model = FluxTransformer2DModel(**cfg).float().eval()
    # norms start at ones: move them so a mix-up of q/k/added norms shows
    with torch.no_grad():
        for n, p in model.named_parameters():
            if 'norm_q' in n or 'norm_k' in n or 'norm_added' in n:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    flux_sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    plain_model = FluxTransformer2DModel(**cfg).float().eval()  # stock processors, for a self-check
    plain_model.load_state_dict(flux_sd)

    procs = install_ip_processors(model, IP_DIM)
    with torch.no_grad():  # nonzero, non-unit IP weights so every parameter matters
        for n, p in procs.named_parameters():
            if n.endswith('scale'):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    for p in model.parameters():
        p.requires_grad_(False)
    for p in procs.parameters():
        p.requires_grad_(True)
    ip_sd = {f'ip_adapter.{k}': v.detach().clone().contiguous() for k, v in procs.state_dict().items()}

    gh, gw = LAT_H // 2, LAT_W // 2
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(B, LAT_C, LAT_H, LAT_W, generator=g)
    x = pack(latents).clone().requires_grad_(True)
    txt = torch.randn(B, LT, cfg['joint_attention_dim'], generator=g).requires_grad_(True)
    pooled = torch.randn(B, cfg['pooled_projection_dim'], generator=g)
    sigma = torch.tensor([0.3, 0.85])
    guidance = torch.tensor([3.5, 1.0])
    ip_tokens = torch.randn(B, LIP, IP_DIM, generator=g).requires_grad_(True)
    ids_img = img_ids(gh, gw)
    ids_txt = torch.zeros(LT, 3)

    def run(with_ip):
        kw = ip_kwargs(LT, ip_tokens if with_ip else None, IP_SCALE)
        return model(hidden_states=x, encoder_hidden_states=txt, pooled_projections=pooled, timestep=sigma,
                     img_ids=ids_img, txt_ids=ids_txt, guidance=guidance, joint_attention_kwargs=kw,
                     return_dict=False)[0]

    out = run(True)                                      # [B, N, Cout]
    with torch.no_grad():
        out_noip = run(False)
    wl = torch.randn(out.shape, generator=g)
    loss = (out * wl).sum()
    loss.backward()
    assert (out - out_noip).abs().max() > 1e-3, 'the IP branch must change the output'
    with torch.no_grad():  # the transcribed processor without IP tokens is stock FLUX
        out_plain = plain_model(hidden_states=x, encoder_hidden_states=txt, pooled_projections=pooled,
                                timestep=sigma, img_ids=ids_img, txt_ids=ids_txt, guidance=guidance,
                                return_dict=False)[0]
    assert (out_plain - out_noip).abs().max() < 1e-5, (out_plain - out_noip).abs().max()

    cos, sin = model.pos_embed(torch.cat([ids_txt, ids_img], dim=0))
    # FLUX.1-dev's axes (16, 56, 56) over a 64 x 64 grid (1024^2) after 2 text ids: a few rows
    from diffusers.models.transformers.transformer_flux import FluxPosEmbed
    dev_rows = torch.tensor([0, 1, 2 + 37, 2 + 64 * 17 + 5, 2 + 64 * 63 + 63])
    dcos, dsin = FluxPosEmbed(theta=10000, axes_dim=[16, 56, 56])(torch.cat([torch.zeros(2, 3), img_ids(64, 64)]))
    io = {
        'latents': latents, 'x': x.detach(), 'txt': txt.detach(), 'pooled': pooled, 'sigma': sigma,
        'guidance': guidance, 'ip_tokens': ip_tokens.detach(), 'loss_w': wl,
        'out': out.detach(), 'out_noip': out_noip, 'rope_cos': cos.float(), 'rope_sin': sin.float(),
        'grad.x': x.grad, 'grad.txt': txt.grad, 'grad.ip_tokens': ip_tokens.grad,
        'rope_dev_rows': dev_rows.to(torch.int32), 'rope_dev_cos': dcos[dev_rows].float(),
        'rope_dev_sin': dsin[dev_rows].float(),
        'meta': torch.tensor([gh, gw, LT, LIP, IP_DIM], dtype=torch.int32),
        'ip_scale': torch.tensor([IP_SCALE]),
    }
    for k, p in procs.named_parameters():
        io[f'grad.ip_adapter.{k}'] = p.grad.detach().clone()
    io = {k: v.contiguous() for k, v in io.items()}

    os.makedirs(OUT, exist_ok=True)
    save_file(flux_sd, os.path.join(OUT, 'flux_tiny.safetensors'))
    save_file(to_bfl(flux_sd, cfg['num_layers'], cfg['num_single_layers']),
              os.path.join(OUT, 'flux_tiny_bfl.safetensors'))
    save_file(ip_sd, os.path.join(OUT, 'ip_tiny.safetensors'))
    save_file(io, os.path.join(OUT, 'io.safetensors'))
    n = sum(v.numel() for v in flux_sd.values())
    print(f'flux tiny: {n} params; ip: {sum(v.numel() for v in ip_sd.values())}; '
          f'out |max| {out.abs().max():.4f}, ip effect {(out - out_noip).abs().max():.4f}, loss {loss.item():.6f}')


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""fixtures_step.py — one whole InstantCharacter training step in PyTorch, for the C assembly
test tests/train/test_step_parity.c (train/step.c step_forward_with).

Every part is the real reference module at a tiny, consistent size, with random weights:
  FLUX    diffusers FluxTransformer2DModel (2 double + 2 single blocks, 2 heads x 8, RoPE axes
          (4, 2, 2) = what C assumes for head size 8, guidance embeds) with the InstantCharacter IP
          processors of scripts/ic_reference_ip.py installed (nonzero to_v_ip, scales off 1)
  adapter scripts/ic_reference.py CrossLayerCrossScaleProjector (width 16 = 6 + 10, 2 heads of 8;
          resampler 2 heads of 8, 8 queries, output 16 = T5 width) + the 4 IP modules
  towers  transformers SiglipVisionModel (6 wide, 3 layers, 28 px, patch 7, with its pooling head
          as published) and Dinov2Model (10 wide, 4 layers, SwiGLU, trained at 35 px = one patch
          more, so its position table is resized 5x5 -> 4x4 as the real 37x37 -> 27x27)
  VAE     diffusers AutoencoderKL (3 levels 4/8/8, 4 latent channels, 4 groups, mid attention,
          no quant convs, FLUX's scaling 0.3611 and shift 0.1159); the encoder's mean is used
  text    transformers T5EncoderModel (v1.1 gated-gelu, 16 wide, 32 buckets, max distance 128) and
          CLIPTextModel (8 wide, 10 positions, eos_token_id 2: the legacy argmax pooling FLUX's
          CLIP has), tokenized with configs/tiny/{t5,clip}-tokenizer.json (the `tokenizers`
          library, FLUX's padding="max_length" + truncation to T5_LEN and to CLIP's positions)

The shallow layers are the ones C picks for these depths (train/models.c shallow_layers: thirds of
the depth): SigLIP (1, 2, 3), DINOv2 (1, 2, 4).

The step (spec §2.4, §4, §5.6): features from the loader's per-tower-normalised views (full view
then the four crops TL, TR, BL, BR); x0 = pack((mean - shift) * scale); x_t = (1 - σ) x0 + σ ε;
target ε - x0; tokens, temb = projector(features, t = 1000 σ); pred = FLUX(x_t, T5, CLIP pooled,
σ, guidance, IP tokens x IP_SCALE); loss = mean((pred - target)^2) (weighting none).

Weights are rounded to bf16 (and stored so, as FLUX is published); the reference then runs in
float64 on exactly those values, so the fixture holds the exact answer and the C f32 run differs
by its own rounding only. Written to tests/fixtures/step/ in the published layouts:
  transformer/      diffusion_pytorch_model.safetensors + config.json   (FLUX, diffusers names)
  vae/              diffusion_pytorch_model.safetensors + config.json   (encoder and decoder)
  text_encoder/     model.safetensors + config.json                     (CLIP text, "text_model.")
  text_encoder_2/   model.safetensors + config.json                     (T5 encoder)
  siglip/           model.safetensors + config.json                     ("vision_model.")
  dinov2/           model.safetensors + config.json                     (transformers v4 names)
  adapter.safetensors   image_proj.* + ip_adapter.{i}.* (metadata: head sizes)
  batch.safetensors     the loader batch: target [B,3,H,W] in [-1,1], ref_siglip / ref_dino
                        [B,5,3,R,R] (bf16 values), sigma [B], eps [B,N,4Cl], guidance, ip_scale,
                        t5_ids / clip_ids (what FLUX's tokenizers give), and the intermediates for
                        diagnosis: x0, txt, pooled, low_res_deep, low_res_shallow, high_res_deep,
                        tokens, temb, pred, loss; metadata: captions (a JSON list, and caption.0,
                        caption.1 for C), t5_len, loss_f64
  grads.safetensors     d loss / d p for every adapter parameter (its own key)
The tokenizers are not copied here (the T5 one is 340 KB): the C test assembles a pipeline folder
in /tmp with configs/tiny/t5-tokenizer.json as tokenizer_2/ and clip-tokenizer.json as tokenizer/.

Run from the repository root: python3 scripts/fixtures_step.py
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ic_reference import ICConfig, CrossLayerCrossScaleProjector, config_metadata  # noqa: E402
from ic_reference_ip import install_ip_processors, ip_kwargs  # noqa: E402
from fixtures_flux import img_ids, pack  # noqa: E402
from fixtures_text import fill_  # noqa: E402
from fixtures_vision import dino_keys, rand_, siglip_keys  # noqa: E402

OUT = "tests/fixtures/step"
T5_TOK = "configs/tiny/t5-tokenizer.json"
CLIP_TOK = "configs/tiny/clip-tokenizer.json"

B, H, W = 2, 32, 32            # targets
LAT_C = 4                      # latent channels: VAE 4x down -> [B, 4, 8, 8] -> 16 tokens of 16
SIG_W, DINO_W = 6, 10          # tower widths (2 heads each); the projector's width is their sum
SIG_LAYERS, DINO_LAYERS = 3, 4
PATCH, R = 7, 28               # reference views R x R = SigLIP's image size
T5_LEN, CLIP_POS = 12, 10
JOINT, POOLED = 16, 8          # T5 width = FLUX joint width = projector output; CLIP width = FLUX pooled
FLUX_HEADS, FLUX_HEAD_DIM = 2, 8
IP_SCALE, GUIDANCE = 0.8, 3.5
SIGMA = [0.27, 0.81]
CAPTIONS = ["a girl wearing a red hat",
            "portrait of an old knight holding a golden sword in a forest at night, anime character standing "
            "in the rain with a blue coat"]  # the second is cut at 12 T5 tokens and 10 CLIP positions
SCALING, SHIFT = 0.3611, 0.1159


def shallow_layers(n):
    """train/models.c shallow_layers for sizes other than the published ones."""
    return [max(1, (k + 1) * n // 3) for k in range(3)]


def bf16_(model):
    """rounds every parameter to bf16 (the stored values), in place"""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(p.dtype))


def save(tensors, path, metadata=None):
    """save_file, then the header rewritten with sorted keys: safetensors writes the metadata in
    hash order, and the committed files should not change from run to run"""
    save_file(tensors, path, metadata=metadata)
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    head = json.dumps(json.loads(raw[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head + raw[8 + n:])


def save_bf16(sd, path, metadata=None):
    save({k: v.detach().to(torch.bfloat16).contiguous() for k, v in sd.items()}, path, metadata=metadata)


def write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def tokenize(path, texts, length, pad_id, pad_token):
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(path)
    t.enable_truncation(max_length=length)
    t.enable_padding(length=length, pad_id=pad_id, pad_token=pad_token)
    return torch.tensor([e.ids for e in t.encode_batch(texts)], dtype=torch.int64)


def main():
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import (CLIPTextConfig, CLIPTextModel, Dinov2Config, Dinov2Model, SiglipVisionConfig,
                              SiglipVisionModel, T5Config, T5EncoderModel)
    from tokenizers import Tokenizer
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    for d in ("transformer", "vae", "text_encoder", "text_encoder_2", "siglip", "dinov2"):
        os.makedirs(f"{OUT}/{d}", exist_ok=True)

    # ---------------------------------------------------------------- frozen models
    flux_cfg = dict(patch_size=1, in_channels=4 * LAT_C, out_channels=None, num_layers=2, num_single_layers=2,
                    attention_head_dim=FLUX_HEAD_DIM, num_attention_heads=FLUX_HEADS, joint_attention_dim=JOINT,
                    pooled_projection_dim=POOLED, guidance_embeds=True, axes_dims_rope=(4, 2, 2))
    flux = FluxTransformer2DModel(**flux_cfg).eval()
    with torch.no_grad():  # q/k norms start at ones: move them so a mix-up shows
        for n, p in flux.named_parameters():
            if "norm_q" in n or "norm_k" in n or "norm_added" in n:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    bf16_(flux)
    save_bf16(flux.state_dict(), f"{OUT}/transformer/diffusion_pytorch_model.safetensors")
    flux.save_config(f"{OUT}/transformer")

    vae_cfg = dict(in_channels=3, out_channels=3, latent_channels=LAT_C, block_out_channels=(4, 8, 8),
                   down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                   layers_per_block=1, norm_num_groups=4, act_fn="silu", use_quant_conv=False,
                   use_post_quant_conv=False, scaling_factor=SCALING, shift_factor=SHIFT, mid_block_add_attention=True)
    vae = AutoencoderKL(**vae_cfg).eval()
    g = torch.Generator().manual_seed(21)
    with torch.no_grad():  # as scripts/fixtures_vae.py: O(1) activations through the depth
        for name, p in sorted(vae.named_parameters()):
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
    bf16_(vae)
    save_bf16(vae.state_dict(), f"{OUT}/vae/diffusion_pytorch_model.safetensors")
    vae.save_config(f"{OUT}/vae")

    sig_cfg = SiglipVisionConfig(hidden_size=SIG_W, intermediate_size=2 * SIG_W, num_hidden_layers=SIG_LAYERS,
                                 num_attention_heads=2, image_size=R, patch_size=PATCH, layer_norm_eps=1e-6,
                                 hidden_act="gelu_pytorch_tanh")
    sig = SiglipVisionModel(sig_cfg).eval()
    rand_(sig)
    bf16_(sig)
    save_bf16(siglip_keys(sig.state_dict()), f"{OUT}/siglip/model.safetensors")
    sig_cfg.to_json_file(f"{OUT}/siglip/config.json", use_diff=False)

    dino_cfg = Dinov2Config(hidden_size=DINO_W, num_hidden_layers=DINO_LAYERS, num_attention_heads=2, mlp_ratio=4,
                            image_size=R + PATCH, patch_size=PATCH, layer_norm_eps=1e-6, use_swiglu_ffn=True,
                            layerscale_value=1.0, qkv_bias=True)
    dino = Dinov2Model(dino_cfg).eval()
    rand_(dino)
    bf16_(dino)
    save_bf16(dino_keys(dino.state_dict()), f"{OUT}/dinov2/model.safetensors")
    dino_cfg.to_json_file(f"{OUT}/dinov2/config.json", use_diff=False)

    t5_vocab = Tokenizer.from_file(T5_TOK).get_vocab_size()
    clip_vocab = Tokenizer.from_file(CLIP_TOK).get_vocab_size()
    t5_cfg = T5Config(vocab_size=t5_vocab, d_model=JOINT, d_kv=8, d_ff=2 * JOINT, num_layers=2, num_heads=2,
                      relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.0,
                      layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    t5 = T5EncoderModel(t5_cfg).eval()
    fill_(t5, 31)
    bf16_(t5)
    sd = {k: v for k, v in t5.state_dict().items() if k != "encoder.embed_tokens.weight"}  # tied to shared
    save_bf16(sd, f"{OUT}/text_encoder_2/model.safetensors")
    t5_cfg.to_json_file(f"{OUT}/text_encoder_2/config.json", use_diff=False)

    clip_eos = clip_vocab - 1  # <|endoftext|>, the largest id (so the legacy argmax rule finds it)
    clip_cfg = CLIPTextConfig(vocab_size=clip_vocab, hidden_size=POOLED, intermediate_size=2 * POOLED,
                              num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=CLIP_POS,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=2,
                              bos_token_id=clip_vocab - 2, pad_token_id=1, attention_dropout=0.0)
    clip = CLIPTextModel(clip_cfg).eval()
    fill_(clip, 33, emb_std=0.5)
    bf16_(clip)
    sd = {("text_model." + k if not k.startswith("text_model.") else k): v for k, v in clip.state_dict().items()}
    save_bf16(sd, f"{OUT}/text_encoder/model.safetensors")
    clip_cfg.to_json_file(f"{OUT}/text_encoder/config.json", use_diff=False)

    # ---------------------------------------------------------------- the adapter
    ic = ICConfig(inner_dim=SIG_W + DINO_W, num_attention_heads=(SIG_W + DINO_W) // 8, attention_head_dim=8,
                  cross_attention_dim=SIG_W + DINO_W, num_layers=1, dim=16, depth=1, dim_head=8, heads=2,
                  num_queries=8, embedding_dim=SIG_W + DINO_W, output_dim=JOINT, ff_mult=4, timestep_in_dim=16,
                  n_ip=4, ip_hidden=FLUX_HEADS * FLUX_HEAD_DIM, ip_head_dim=FLUX_HEAD_DIM)
    proj = CrossLayerCrossScaleProjector(ic)
    with torch.no_grad():  # as scripts/fixtures_ic.py: no parameter trivial
        for name, p in proj.named_parameters():
            if name.endswith("latents"):
                continue
            if p.ndim == 1:
                base = 1.0 if ("norm" in name and name.endswith("weight")) or ".1.0.weight" in name else 0.0
                p.copy_(base + 0.2 * torch.randn_like(p))
            else:
                p.add_(0.05 * torch.randn_like(p))
    procs = install_ip_processors(flux, JOINT)
    with torch.no_grad():  # nonzero, non-unit IP weights (to_v_ip too) so the branch matters
        for n, p in procs.named_parameters():
            p.copy_(1 + 0.3 * torch.randn_like(p) if n.endswith("scale") else 0.3 * torch.randn_like(p))
    assert len(procs) == ic.n_ip
    bf16_(proj)
    bf16_(procs)
    adapter = {"image_proj." + k: v for k, v in proj.state_dict().items()}
    adapter.update({"ip_adapter." + k: v for k, v in procs.state_dict().items()})
    save_bf16(adapter, f"{OUT}/adapter.safetensors", metadata=config_metadata(ic))

    # ---------------------------------------------------------------- the batch
    gi = torch.Generator().manual_seed(5)
    target = torch.rand(B, 3, H, W, generator=gi) * 2 - 1                    # [-1, 1]
    low = torch.rand(B, 3, R, R, generator=gi)                               # [0, 1] full view
    high = torch.rand(B, 3, 2 * R, 2 * R, generator=gi)                      # [0, 1] 2x view
    crops = [high[:, :, :R, :R], high[:, :, :R, R:], high[:, :, R:, :R], high[:, :, R:, R:]]  # TL TR BL BR
    views = torch.stack([low] + crops, 1)                                    # [B, 5, 3, R, R]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
    ref_siglip = ((views - 0.5) / 0.5).to(torch.bfloat16)                    # stored as bf16: exact in f32
    ref_dino = ((views - mean) / std).to(torch.bfloat16)
    sigma = torch.tensor(SIGMA, dtype=torch.float32)
    gh, gw = H // 8, W // 8                                                  # VAE 4x, then 2x2 packing
    eps = torch.randn(B, gh * gw, 4 * LAT_C, generator=gi)
    t5_ids = tokenize(T5_TOK, CAPTIONS, T5_LEN, 0, "<pad>")
    clip_ids = tokenize(CLIP_TOK, CAPTIONS, CLIP_POS, clip_eos, "<|endoftext|>")

    # ---------------------------------------------------------------- the step, in float64
    for m in (flux, vae, sig, dino, t5, clip, proj):
        m.double()
    for p in list(flux.parameters()) + list(vae.parameters()) + list(sig.parameters()) + list(dino.parameters()) + \
            list(t5.parameters()) + list(clip.parameters()):
        p.requires_grad_(False)
    for p in list(proj.parameters()) + list(procs.parameters()):
        p.requires_grad_(True)
    sig_sh, dino_sh = shallow_layers(SIG_LAYERS), shallow_layers(DINO_LAYERS)

    with torch.no_grad():
        vs, vd = ref_siglip.double(), ref_dino.double()
        so = sig(pixel_values=vs[:, 0], output_hidden_states=True)
        do = dino(pixel_values=vd[:, 0], output_hidden_states=True)
        sc = sig(pixel_values=vs[:, 1:].reshape(4 * B, 3, R, R)).last_hidden_state   # '(b n)'
        dc = dino(pixel_values=vd[:, 1:].reshape(4 * B, 3, R, R)).last_hidden_state[:, 1:]
        L = sc.shape[1]
        low_res_deep = torch.cat([so.last_hidden_state, do.last_hidden_state[:, 1:]], -1)
        low_res_shallow = torch.cat([torch.cat([so.hidden_states[i] for i in sig_sh], 1),
                                     torch.cat([do.hidden_states[i][:, 1:] for i in dino_sh], 1)], -1)
        high_res_deep = torch.cat([sc.reshape(B, 4 * L, -1), dc.reshape(B, 4 * L, -1)], -1)

        z = vae.encode(target.double()).latent_dist.mean                     # [B, Cl, H/4, W/4]
        x0 = pack((z - SHIFT) * SCALING)                                     # [B, N, 4 Cl]
        txt = t5(input_ids=t5_ids).last_hidden_state                         # [B, T5_LEN, JOINT]
        pooled = clip(input_ids=clip_ids).pooler_output                      # [B, POOLED]

        s = sigma.double().view(B, 1, 1)
        xt = (1 - s) * x0 + s * eps.double()
        tgt = eps.double() - x0

    t1000 = sigma * 1000.0                                                   # f32, as C's op_scale
    tokens, temb = proj(low_res_shallow, low_res_deep, high_res_deep, t1000.double())
    guidance = torch.full((B,), GUIDANCE, dtype=torch.float64)
    pred = flux(hidden_states=xt, encoder_hidden_states=txt, pooled_projections=pooled, timestep=sigma.double(),
                img_ids=img_ids(gh, gw).double(), txt_ids=torch.zeros(T5_LEN, 3, dtype=torch.float64),
                guidance=guidance, joint_attention_kwargs=ip_kwargs(T5_LEN, tokens, IP_SCALE), return_dict=False)[0]
    loss = F.mse_loss(pred, tgt)
    loss.backward()

    with torch.no_grad():  # the IP branch must matter
        pred0 = flux(hidden_states=xt, encoder_hidden_states=txt, pooled_projections=pooled, timestep=sigma.double(),
                     img_ids=img_ids(gh, gw).double(), txt_ids=torch.zeros(T5_LEN, 3, dtype=torch.float64),
                     guidance=guidance, joint_attention_kwargs=ip_kwargs(T5_LEN, None, IP_SCALE), return_dict=False)[0]
    ip_effect = (pred - pred0).abs().max().item()
    assert ip_effect > 1e-2, ip_effect

    grads = {"image_proj." + k: p.grad for k, p in proj.named_parameters()}
    grads.update({"ip_adapter." + k: p.grad for k, p in procs.named_parameters()})
    assert len(grads) == len(adapter) and all(g is not None for g in grads.values())
    f32 = lambda x: x.detach().float().contiguous()  # noqa: E731
    save({k: f32(v) for k, v in grads.items()}, f"{OUT}/grads.safetensors")
    batch = {
        "target": target, "ref_siglip": ref_siglip.contiguous(), "ref_dino": ref_dino.contiguous(), "sigma": sigma,
        "eps": eps, "guidance": torch.tensor([GUIDANCE]), "ip_scale": torch.tensor([IP_SCALE]),
        "t5_ids": t5_ids.to(torch.int32), "clip_ids": clip_ids.to(torch.int32),
        "x0": f32(x0), "txt": f32(txt), "pooled": f32(pooled), "low_res_deep": f32(low_res_deep),
        "low_res_shallow": f32(low_res_shallow), "high_res_deep": f32(high_res_deep),
        "tokens": f32(tokens), "temb": f32(temb), "pred": f32(pred), "loss": f32(loss.reshape(1)),
    }
    save({k: v.contiguous() for k, v in batch.items()}, f"{OUT}/batch.safetensors",
              metadata={"captions": json.dumps(CAPTIONS), **{f"caption.{i}": c for i, c in enumerate(CAPTIONS)},
                        "t5_len": str(T5_LEN), "loss_f64": repr(loss.item())})

    total = 0
    for root, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            n = os.path.getsize(os.path.join(root, f))
            total += n
            print(f"{os.path.join(root, f)} {n}")
    n_ad = sum(v.numel() for v in adapter.values())
    print(f"total {total} bytes; adapter {n_ad} params in {len(adapter)} tensors; loss {loss.item():.9f}; "
          f"IP effect on pred {ip_effect:.4f}; |pred| max {pred.abs().max().item():.3f}; "
          f"t5 ids {t5_ids.tolist()}; clip ids {clip_ids.tolist()}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench_train_torch.py — the PyTorch twin of `cameo bench train` (train/bench_train.c).

Builds the same architecture at the same dims with the reference modules the C fixtures come
from: a diffusers FluxTransformer2DModel with the InstantCharacter IP processors
(scripts/ic_reference_ip.py), the projector transcription (scripts/ic_reference.py), transformers
SigLIP / DINOv2 (SwiGLU, position table one patch larger, as models.c) / T5 v1.1 / CLIP text, and
the encoder of a diffusers AutoencoderKL. Frozen parts have requires_grad False and run under
no_grad; the projector and the IP modules train with AdamW after clip_grad_norm_, less the adapter
weights --freeze names (adapter.freeze: requires_grad False, so no gradient and no AdamW state);
--ema keeps a weight average as cameo's optimizer.ema, --recompute N checkpoints the first N FLUX
blocks as cameo's train.recompute.

Inputs of the frozen parts are random tensors of the loader's shapes (reference views
[5B, 3, R, R] per tower, target [B, 3, H, W] in [-1, 1], token ids [B, text_len] / [B, 16]),
made before the clock starts: data loading is timed on the C side only.

Prints one JSON object on stdout (seconds per optimizer step, the median over --steps per phase;
outside_load: the share of the machine other processes took meanwhile):
  {"torch", "threads", "steps", "samples_per_step", "t_data", "t_encoders", "t_vision", "t_vae", "t_text", "t_forward",
   "t_backward", "t_optimizer", "t_step", "steps_per_s", "samples_per_s", "params_frozen",
   "params_adapter", "params_adapter_held", "adapter_tensors", "adapter_tensors_held", "recompute_blocks", "ema",
   "saved_activation_bytes",
   "max_rss_bytes", "outside_load"}
Exits 0 silently when torch / diffusers / transformers are missing (the C side says "n/a").

Run by the C bench; by hand, from the repository root:
  python3 scripts/bench_train_torch.py --threads 2 --steps 5 --batch 4 --height 64 --width 64 \
      --ref 28 --dims '{"flux_double": 2, ...}'   (every train_tiny_dims field, see train/config.h)
"""
import argparse
import functools
import json
import os
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import (CLIPTextConfig, CLIPTextModel, Dinov2Config, Dinov2Model, SiglipVisionConfig,
                              SiglipVisionModel, T5Config, T5EncoderModel)
except ImportError:
    raise SystemExit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ic_reference import CrossLayerCrossScaleProjector, ICConfig  # noqa: E402
from ic_reference_ip import install_ip_processors, ip_kwargs  # noqa: E402

T5_VOCAB, CLIP_VOCAB, CLIP_LEN = 324, 774, 16  # configs/tiny/*-tokenizer.json, train/text.c
VAE_SCALE, VAE_SHIFT = 0.3611, 0.1159


def build(d):
    hd = d["flux_head_dim"]
    a1 = 2 * (7 * hd // 32)  # train/models.c: RoPE axes as models/flux_config.c flux_default_axes
    axes = (hd - 2 * a1, a1, a1)
    lc = d["latent_channels"]
    flux = FluxTransformer2DModel(patch_size=1, in_channels=4 * lc, out_channels=None, num_layers=d["flux_double"],
                                  num_single_layers=d["flux_single"], attention_head_dim=hd,
                                  num_attention_heads=d["flux_heads"], joint_attention_dim=d["text_dim"],
                                  pooled_projection_dim=d["pooled_dim"], guidance_embeds=True, axes_dims_rope=axes)
    procs = install_ip_processors(flux, d["text_dim"])
    vh = d["vision_hidden"]
    inner = 2 * vh
    pc = ICConfig(inner_dim=inner, num_attention_heads=inner // d["proj_head_dim"], attention_head_dim=d["proj_head_dim"],
                  cross_attention_dim=inner, num_layers=d["proj_layers"], block_ff_mult=4,
                  dim=d["proj_heads"] * d["proj_head_dim"], depth=d["proj_depth"], dim_head=d["proj_head_dim"],
                  heads=d["proj_heads"], num_queries=d["proj_queries"], embedding_dim=inner, output_dim=d["text_dim"],
                  ff_mult=4, timestep_in_dim=16)
    proj = CrossLayerCrossScaleProjector(pc)
    sig = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=vh, intermediate_size=2 * vh, num_hidden_layers=d["vision_layers"],
        num_attention_heads=d["vision_heads"], image_size=d["vision_image"], patch_size=d["vision_patch"],
        layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh", vision_use_head=False))
    dino = Dinov2Model(Dinov2Config(
        hidden_size=vh, num_hidden_layers=d["vision_layers"], num_attention_heads=d["vision_heads"], mlp_ratio=4,
        image_size=d["vision_image"] + d["vision_patch"], patch_size=d["vision_patch"], layer_norm_eps=1e-6,
        use_swiglu_ffn=True, qkv_bias=True))
    vc = d["vae_channels"]
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=lc, block_out_channels=(vc // 2, vc, vc),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, norm_num_groups=4, act_fn="silu", use_quant_conv=False,
                        use_post_quant_conv=False, mid_block_add_attention=True)
    venc = vae.encoder  # the step uses the encoder only (as the C bundle, which has no decoder)
    del vae
    td = d["text_dim"]
    t5 = T5EncoderModel(T5Config(vocab_size=T5_VOCAB, d_model=td, d_kv=8, d_ff=2 * td, num_layers=2, num_heads=2,
                                 relative_attention_num_buckets=8, relative_attention_max_distance=16,
                                 dropout_rate=0.0, layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu",
                                 tie_word_embeddings=False))
    pd = d["pooled_dim"]
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=CLIP_VOCAB, hidden_size=pd, intermediate_size=2 * pd,
                                        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=CLIP_LEN,
                                        hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=2, bos_token_id=0, pad_token_id=1,
                                        attention_dropout=0.0))
    frozen = [flux, sig, dino, venc, t5, clip]
    for m in frozen:
        m.float().eval()
        for p in m.parameters():
            p.requires_grad_(False)
    proj.float().train()
    for p in list(proj.parameters()) + list(procs.parameters()):
        p.requires_grad_(True)
    with torch.no_grad():  # init_kv zero_v (train/models.c)
        for m in procs:
            m.to_v_ip.weight.zero_()
            m.to_v_ip.bias.zero_()
    # the processors are submodules of FLUX's attention modules: count by requires_grad
    n_frozen = sum(p.numel() for m in frozen for p in m.parameters() if not p.requires_grad)
    # the adapter by cameo's names (the checkpoint's: image_proj.*, ip_adapter.{block}.*), in order
    named = [("image_proj." + k, p) for k, p in proj.named_parameters()]
    named += [("ip_adapter." + k, p) for k, p in procs.named_parameters()]
    return dict(flux=flux, procs=procs, proj=proj, sig=sig, dino=dino, venc=venc, t5=t5, clip=clip, adapter=named,
                n_frozen=n_frozen, n_adapter=sum(p.numel() for _, p in named))


def freeze_adapter(named, prefixes):
    """adapter.freeze as cameo's stage_freeze_adapter (models/params.c params_freeze_prefix): each
    prefix holds fixed the adapter weights whose name is it or starts with it followed by '.', and
    must name at least one. Returns (tensors, held tensors, parameters, held parameters)."""
    for i, pre in enumerate(prefixes):
        hit = [p for k, p in named if k == pre or k.startswith(pre + ".")]
        if not hit:
            raise SystemExit(f"bench_train_torch.py: adapter.freeze[{i}]: '{pre}' names no adapter weight (a prefix of "
                             "whole name parts: image_proj, ip_adapter, image_proj.cross_layer_blocks.0, ip_adapter.3, ...)")
        for p in hit:
            p.requires_grad_(False)
    held = [p for _, p in named if not p.requires_grad]
    if len(held) == len(named):
        raise SystemExit("bench_train_torch.py: adapter.freeze: every adapter weight is held fixed, so there is nothing to train")
    return len(named), len(held), sum(p.numel() for _, p in named), sum(p.numel() for p in held)


def _checkpointed(forward, *args, **kwargs):
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)


def recompute_blocks(flux, n):
    """train.recompute as cameo's flux_forward: the first n blocks (double, then single) keep only
    their inputs and run again in backward (torch.utils.checkpoint). Returns how many."""
    blocks = list(flux.transformer_blocks) + list(flux.single_transformer_blocks)
    n = len(blocks) if n < 0 or n > len(blocks) else n
    for b in blocks[:n]:
        b.forward = functools.partial(_checkpointed, b.forward)
    return n


def machine_busy_s():  # busy seconds of all cores (/proc/stat), 0 where unavailable
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:8]]
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


def self_cpu_s():
    t = os.times()
    return t.user + t.system


def shallow_layers(L):  # train/models.c: thirds of the depth, at least 1
    return [max(1, (k + 1) * L // 3) for k in range(3)]


def features(M, d, B, vs, vd):
    """models/vision_features.c: low_res_deep, low_res_shallow, high_res_deep from the 5B views."""
    so = M["sig"](pixel_values=vs, output_hidden_states=True)
    do = M["dino"](pixel_values=vd, output_hidden_states=True)
    sl = shallow_layers(d["vision_layers"])
    sd, dd = so.last_hidden_state, do.last_hidden_state[:, 1:]
    N, Ds = sd.shape[1], sd.shape[2]
    low_deep = torch.cat([sd[:B], dd[:B]], -1)
    high_deep = torch.cat([sd[B:].reshape(B, 4 * N, -1), dd[B:].reshape(B, 4 * N, -1)], -1)
    low_sh = torch.cat([torch.cat([so.hidden_states[i][:B] for i in sl], 1),
                        torch.cat([do.hidden_states[i][:B, 1:] for i in sl], 1)], -1)
    return low_sh, low_deep, high_deep


def pack(z):
    b, c, h, w = z.shape
    return z.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def weight_storages(models):
    """every parameter and buffer of the models, by storage (frozen ones included)."""
    return {x.untyped_storage().data_ptr() for m in models for x in list(m.parameters()) + list(m.buffers())}


def tape_bytes(weights, run):
    """bytes of the unique storages autograd saves for backward while run() builds its graph, weights
    (weight_storages) left out: the tape saves a frozen Linear's weight too (for its input's gradient),
    but weights are counted apart, as cameo counts them."""
    seen = {}

    def pack_hook(x):
        s = x.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack_hook, lambda x: x):
        out = run()
    return sum(n for p, n in seen.items() if p not in weights), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--ref", type=int, default=28)
    ap.add_argument("--dims", required=True, help="train_tiny_dims as JSON")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999))
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.0, help="optimizer.ema: the weight average's decay (0 = none)")
    ap.add_argument("--recompute", type=int, default=0, help="FLUX blocks recomputed in backward, the first N (-1 = all)")
    ap.add_argument("--freeze", action="append", default=[], metavar="PREFIX",
                    help="adapter.freeze: adapter weights held fixed, by cameo's name prefix (repeatable)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d = json.loads(a.dims)
    M = build(d)
    B, H, W, R, GA = a.batch, a.height, a.width, a.ref, a.grad_accum
    n_tensors, n_held, _, held = freeze_adapter(M["adapter"], a.freeze)  # no gradient, no AdamW state
    trainable = [p for _, p in M["adapter"] if p.requires_grad]
    n_rc = recompute_blocks(M["flux"], a.recompute)
    ema = [p.detach().clone() for p in trainable] if a.ema > 0 else []  # f32 average of the trained weights
    opt = torch.optim.AdamW(trainable, lr=a.lr, betas=tuple(a.betas), eps=a.eps, weight_decay=a.weight_decay)
    f = 4  # three VAE levels
    gh, gw = H // f // 2, W // f // 2
    ids_img = torch.zeros(gh, gw, 3)
    ids_img[..., 1] = torch.arange(gh)[:, None]
    ids_img[..., 2] = torch.arange(gw)[None, :]
    ids_img = ids_img.reshape(gh * gw, 3)
    ids_txt = torch.zeros(d["text_len"], 3)
    guidance = torch.ones(B)

    def inputs():  # what the loader hands: made outside the clock
        return dict(vs=torch.randn(5 * B, 3, R, R), vd=torch.randn(5 * B, 3, R, R),
                    img=torch.rand(B, 3, H, W) * 2 - 1,
                    t5=torch.randint(0, T5_VOCAB, (B, d["text_len"])), clip=torch.randint(0, CLIP_VOCAB - 1, (B, CLIP_LEN)))

    def micro(x, t, measure=None):
        t0 = time.perf_counter()
        with torch.no_grad():
            low_sh, low_deep, high_deep = features(M, d, B, x["vs"], x["vd"])
            ta = time.perf_counter()
            zm, zlv = M["venc"](x["img"]).chunk(2, dim=1)  # a posterior draw, as cameo's train.vae_sample
            z = zm + torch.exp(0.5 * zlv.clamp(-30.0, 20.0)) * torch.randn_like(zm)
            x0 = pack((z - VAE_SHIFT) * VAE_SCALE)
            tb = time.perf_counter()
            txt = M["t5"](input_ids=x["t5"]).last_hidden_state
            pooled = M["clip"](input_ids=x["clip"]).pooler_output
            tc = time.perf_counter()
            sigma = torch.sigmoid(torch.randn(B))
            eps = torch.randn_like(x0)
            s = sigma.view(B, 1, 1)
            xt = (1 - s) * x0 + s * eps
            target = eps - x0
        t1 = time.perf_counter()

        def forward():
            tokens, temb = M["proj"](low_sh, low_deep, high_deep, 1000 * sigma)
            pred = M["flux"](hidden_states=xt, encoder_hidden_states=txt, pooled_projections=pooled, timestep=sigma,
                             img_ids=ids_img, txt_ids=ids_txt, guidance=guidance,
                             joint_attention_kwargs=ip_kwargs(d["text_len"], tokens, 1.0), return_dict=False)[0]
            return F.mse_loss(pred, target)
        if measure is None:
            loss = forward()
        else:  # this micro-step's tape alone: the largest over the micro-steps, as the C side
            b, loss = tape_bytes(weights, forward)
            measure[0] = max(measure[0], b)
        t2 = time.perf_counter()
        (loss / GA).backward()
        t3 = time.perf_counter()
        t["enc"] += t1 - t0
        t["vis"] += ta - t0
        t["vae"] += tb - ta
        t["txt"] += tc - tb
        t["fwd"] += t2 - t1
        t["bwd"] += t3 - t2

    def step(t, measure=None):
        for _ in range(GA):
            micro(inputs_q.pop(), t, measure)
        t0 = time.perf_counter()
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, a.grad_clip)
        else:  # no clipping (max_norm 0 would zero every gradient); the norm still measured, as cameo's
            torch.nn.utils.get_total_norm([p.grad for p in trainable if p.grad is not None])
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():  # optimizer.ema: ema = d ema + (1 - d) w after each update, as cameo's optim_step
            for e, p in zip(ema, trainable):
                e.lerp_(p, 1 - a.ema)
        t["opt"] += time.perf_counter() - t0

    # saved activations: the largest micro-step's tape (one untimed step), every model's weights left out
    weights = weight_storages(M[k] for k in ("flux", "procs", "proj", "sig", "dino", "venc", "t5", "clip"))
    inputs_q = [inputs() for _ in range(GA * (a.warmup + 1))]
    tt = dict(enc=0.0, fwd=0.0, bwd=0.0, opt=0.0, vis=0.0, vae=0.0, txt=0.0)
    for _ in range(a.warmup):
        step(tt)
    measure = [0]
    step(tt, measure)
    saved = measure[0]

    inputs_q = [inputs() for _ in range(GA * a.steps)]
    recs = []
    busy0, self0, w0 = machine_busy_s(), self_cpu_s(), time.perf_counter()
    for _ in range(a.steps):
        t = dict(enc=0.0, fwd=0.0, bwd=0.0, opt=0.0, vis=0.0, vae=0.0, txt=0.0)
        s0 = time.perf_counter()
        step(t)
        t["step"] = time.perf_counter() - s0
        recs.append(t)
    wall = time.perf_counter() - w0
    outside = ((machine_busy_s() - busy0) - (self_cpu_s() - self0)) / (wall * os.cpu_count())
    n = a.steps
    med = {k: statistics.median(r[k] for r in recs) for k in recs[0]}  # as the C side: medians per phase
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "steps": n, "samples_per_step": B * GA,
           "t_data": 0.0, "t_encoders": med["enc"], "t_forward": med["fwd"], "t_backward": med["bwd"],
           "t_optimizer": med["opt"], "t_step": med["step"], "t_vision": med["vis"], "t_vae": med["vae"], "t_text": med["txt"], "steps_per_s": 1 / med["step"],
           "samples_per_s": B * GA / med["step"], "outside_load": max(0.0, outside),
           "params_frozen": M["n_frozen"], "params_adapter": M["n_adapter"], "params_adapter_held": held,
           "adapter_tensors": n_tensors, "adapter_tensors_held": n_held, "recompute_blocks": n_rc, "ema": a.ema,
           "saved_activation_bytes": saved,
           "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

"""ic_reference.py — a faithful PyTorch transcription of InstantCharacter's image projector.

CrossLayerCrossScaleProjector + TimeResampler (spec/instantcharacter.md §2.5–2.6) with the
parameter names of the published checkpoint (spec §3.2), and the parameter layout of the 57
FluxIPAttnProcessor modules (spec §2.7, §3.1) so that a whole exported adapter can be loaded with
strict=True (scripts/check_export.py).

InstantCharacter is not on PyPI. Like the original models/resampler.py, this file builds the
transformer blocks from diffusers' BasicTransformerBlock and the timestep path from diffusers'
Timesteps / TimestepEmbedding; timm's Mlp (fc1 -> GELU(tanh) -> fc2, no norm, no dropout) and the
Perceiver parts are transcribed here (timm is not needed).

Configs: IC_FULL (the published sizes) and IC_TINY (the fixtures; same code path).
Head sizes cannot be read from tensor shapes; config_from_state_dict() takes them from the
safetensors metadata keys written by cameo ("ic.head_dim", "ic.resampler_head_dim",
"ic.ip_head_dim") and falls back to the published 64 / 64 / 128.
"""
import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.embeddings import Timesteps, TimestepEmbedding


@dataclass(frozen=True)
class ICConfig:
    # projector transformer blocks
    inner_dim: int = 2688
    num_attention_heads: int = 42
    attention_head_dim: int = 64
    cross_attention_dim: int = 2688
    num_layers: int = 4
    block_ff_mult: int = 4          # diffusers FeedForward default inside BasicTransformerBlock
    # resampler
    dim: int = 1280
    depth: int = 4
    dim_head: int = 64
    heads: int = 20
    num_queries: int = 1024
    embedding_dim: int = 2688
    output_dim: int = 4096
    ff_mult: int = 4
    timestep_in_dim: int = 320
    timestep_flip_sin_to_cos: bool = True
    timestep_freq_shift: float = 0
    # IP attention modules (one per FLUX attention layer)
    n_ip: int = 57
    ip_hidden: int = 3072
    ip_head_dim: int = 128


IC_FULL = ICConfig()
IC_TINY = ICConfig(inner_dim=32, num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                   num_layers=2, dim=24, depth=2, dim_head=8, heads=3, num_queries=8, embedding_dim=32,
                   output_dim=16, ff_mult=4, timestep_in_dim=16, n_ip=3, ip_hidden=32, ip_head_dim=16)


# --- timm.layers.Mlp as IC builds it: Mlp(inner, 2*inner, act=GELU(tanh), drop=0) ---
class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


# --- IC resampler.py ---
def FeedForward(dim, mult=4):
    inner_dim = int(dim * mult)
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner_dim, bias=False),
        nn.GELU(),
        nn.Linear(inner_dim, dim, bias=False),
    )


def reshape_tensor(x, heads):
    bs, length, width = x.shape
    x = x.view(bs, length, heads, -1)
    x = x.transpose(1, 2)
    return x.reshape(bs, heads, length, -1)


class PerceiverAttention(nn.Module):
    def __init__(self, *, dim, dim_head=64, heads=8):
        super().__init__()
        self.dim_head = dim_head
        self.heads = heads
        inner_dim = dim_head * heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner_dim, bias=False)
        self.to_kv = nn.Linear(dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, dim, bias=False)

    def forward(self, x, latents, shift=None, scale=None):
        x = self.norm1(x)
        latents = self.norm2(latents)
        if shift is not None and scale is not None:
            latents = latents * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)
        b, l, _ = latents.shape
        q = self.to_q(latents)
        kv_input = torch.cat((x, latents), dim=-2)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)
        q = reshape_tensor(q, self.heads)
        k = reshape_tensor(k, self.heads)
        v = reshape_tensor(v, self.heads)
        # attention: dh^-1/4 on both q and k, softmax in f32 (as the original)
        scale = 1 / math.sqrt(math.sqrt(self.dim_head))
        weight = (q * scale) @ (k * scale).transpose(-2, -1)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        out = weight @ v
        out = out.permute(0, 2, 1, 3).reshape(b, l, -1)
        return self.to_out(out)


class TimeResampler(nn.Module):
    def __init__(self, dim=1024, depth=8, dim_head=64, heads=16, num_queries=8, embedding_dim=768,
                 output_dim=1024, ff_mult=4, timestep_in_dim=320, timestep_flip_sin_to_cos=True,
                 timestep_freq_shift=0):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PerceiverAttention(dim=dim, dim_head=dim_head, heads=heads),
                FeedForward(dim=dim, mult=ff_mult),
                nn.Sequential(nn.SiLU(), nn.Linear(dim, 4 * dim, bias=True)),  # adaLN
            ]))
        self.time_proj = Timesteps(timestep_in_dim, timestep_flip_sin_to_cos, timestep_freq_shift)
        self.time_embedding = TimestepEmbedding(timestep_in_dim, dim, act_fn="silu")

    def forward(self, x, timestep, need_temb=False):
        timestep_emb = self.embedding_time(x, timestep)  # [B, dim]
        latents = self.latents.repeat(x.size(0), 1, 1)
        x = self.proj_in(x)
        x = x + timestep_emb[:, None]
        for attn, ff, adaLN_modulation in self.layers:
            shift_msa, scale_msa, shift_mlp, scale_mlp = adaLN_modulation(timestep_emb).chunk(4, dim=1)
            latents = attn(x, latents, shift_msa, scale_msa) + latents
            res = latents
            for idx_ff, layer_ff in enumerate(ff):
                latents = layer_ff(latents)
                if idx_ff == 0 and isinstance(layer_ff, nn.LayerNorm):  # adaLN after the FF's LayerNorm
                    latents = latents * (1 + scale_mlp.unsqueeze(1)) + shift_mlp.unsqueeze(1)
            latents = latents + res
        latents = self.proj_out(latents)
        latents = self.norm_out(latents)
        return (latents, timestep_emb) if need_temb else latents

    def embedding_time(self, sample, timestep):
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.float64, device=sample.device)
        elif len(timesteps.shape) == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(sample.shape[0])
        t_emb = self.time_proj(timesteps)  # always f32 (diffusers), cast to the model's dtype
        t_emb = t_emb.to(dtype=sample.dtype)
        return self.time_embedding(t_emb, None)


def _block(c: ICConfig):
    return BasicTransformerBlock(
        c.inner_dim, c.num_attention_heads, c.attention_head_dim, dropout=0,
        cross_attention_dim=c.cross_attention_dim, activation_fn="geglu", num_embeds_ada_norm=None,
        attention_bias=False, only_cross_attention=False, double_self_attention=False,
        upcast_attention=False, norm_type="layer_norm", norm_elementwise_affine=True, norm_eps=1e-6,
        attention_type="default", ff_inner_dim=c.block_ff_mult * c.inner_dim)


class CrossLayerCrossScaleProjector(nn.Module):
    def __init__(self, c: ICConfig = IC_FULL):
        super().__init__()
        self.cross_layer_blocks = nn.ModuleList([_block(c) for _ in range(c.num_layers)])
        self.cross_scale_blocks = nn.ModuleList([_block(c) for _ in range(c.num_layers)])
        self.proj = Mlp(c.inner_dim, int(c.inner_dim * 2))
        self.proj_cross_layer = Mlp(c.inner_dim, int(c.inner_dim * 2))
        self.proj_cross_scale = Mlp(c.inner_dim, int(c.inner_dim * 2))
        self.resampler = TimeResampler(
            dim=c.dim, depth=c.depth, dim_head=c.dim_head, heads=c.heads, num_queries=c.num_queries,
            embedding_dim=c.embedding_dim, output_dim=c.output_dim, ff_mult=c.ff_mult,
            timestep_in_dim=c.timestep_in_dim, timestep_flip_sin_to_cos=c.timestep_flip_sin_to_cos,
            timestep_freq_shift=c.timestep_freq_shift)

    def forward(self, low_res_shallow, low_res_deep, high_res_deep, timesteps):
        cl = low_res_deep
        for block in self.cross_layer_blocks:
            cl = block(cl, encoder_hidden_states=low_res_shallow)
        cl = self.proj_cross_layer(cl)
        cs = low_res_deep
        for block in self.cross_scale_blocks:
            cs = block(cs, encoder_hidden_states=high_res_deep)
        cs = self.proj_cross_scale(cs)
        h = self.proj(low_res_deep) + cs
        h = torch.cat([h, cl], dim=1)
        return self.resampler(h, timesteps, need_temb=True)  # tokens [B, Q, out], temb [B, dim]


# --- IP attention parameters (spec §2.7): enough to hold and exercise an exported ip_adapter ---
class ICRMSNorm(nn.Module):
    """InstantCharacter's RMSNorm: y = scale * x / (||x|| d^-1/2 + eps) (eps added to the RMS)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        rms = x.norm(2, dim=-1, keepdim=True) * x.shape[-1] ** -0.5
        return self.scale * (x / (rms + self.eps))


class FluxIPAttnProcessor(nn.Module):
    def __init__(self, hidden_size, ip_hidden_states_dim, head_dim):
        super().__init__()
        self.head_dim = head_dim
        self.norm_ip_q = ICRMSNorm(head_dim, eps=1e-6)
        self.to_k_ip = nn.Linear(ip_hidden_states_dim, hidden_size, bias=True)
        self.norm_ip_k = ICRMSNorm(head_dim, eps=1e-6)
        self.to_v_ip = nn.Linear(ip_hidden_states_dim, hidden_size, bias=True)

    def ip_branch(self, img_q, ip):
        """img_q [B, L, hidden] (FLUX's raw to_q output), ip [B, N, ip_dim] -> [B, L, hidden]."""
        B, L, C = img_q.shape
        H = C // self.head_dim
        q = self.norm_ip_q(img_q.view(B, L, H, self.head_dim)).transpose(1, 2)
        k = self.norm_ip_k(self.to_k_ip(ip).view(B, -1, H, self.head_dim)).transpose(1, 2)
        v = self.to_v_ip(ip).view(B, -1, H, self.head_dim).transpose(1, 2)
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return o.transpose(1, 2).reshape(B, L, C)


class ICAdapter(nn.Module):
    """The whole trainable adapter, keyed like the published checkpoint once flattened:
    image_proj.* and ip_adapter.{i}.*"""

    def __init__(self, c: ICConfig = IC_FULL):
        super().__init__()
        self.image_proj = CrossLayerCrossScaleProjector(c)
        self.ip_adapter = nn.ModuleList(
            [FluxIPAttnProcessor(c.ip_hidden, c.output_dim, c.ip_head_dim) for _ in range(c.n_ip)])


def config_from_state_dict(sd, meta=None):
    """Reads the sizes of an adapter (keys image_proj.* and/or ip_adapter.*) from its shapes."""
    meta = meta or {}

    def shape(k):
        return tuple(sd[k].shape)

    def count(prefix):
        n = 0
        while any(k.startswith(f"{prefix}.{n}.") for k in sd):
            n += 1
        return n

    p = "image_proj."
    inner = shape(p + "cross_layer_blocks.0.norm1.weight")[0]
    hd = int(meta.get("ic.head_dim", 64))
    rhd = int(meta.get("ic.resampler_head_dim", 64))
    dim = shape(p + "resampler.proj_in.weight")[0]
    c = ICConfig(
        inner_dim=inner, attention_head_dim=hd, num_attention_heads=inner // hd,
        cross_attention_dim=shape(p + "cross_layer_blocks.0.attn2.to_k.weight")[1],
        num_layers=count(p + "cross_layer_blocks"),
        block_ff_mult=shape(p + "cross_layer_blocks.0.ff.net.0.proj.weight")[0] // (2 * inner),
        dim=dim, depth=count(p + "resampler.layers"), dim_head=rhd,
        heads=shape(p + "resampler.layers.0.0.to_q.weight")[0] // rhd,
        num_queries=shape(p + "resampler.latents")[1],
        embedding_dim=shape(p + "resampler.proj_in.weight")[1],
        output_dim=shape(p + "resampler.proj_out.weight")[0],
        ff_mult=shape(p + "resampler.layers.0.1.1.weight")[0] // dim,
        timestep_in_dim=shape(p + "resampler.time_embedding.linear_1.weight")[1],
        n_ip=count("ip_adapter"))
    if c.n_ip:
        c = replace(c, ip_hidden=shape("ip_adapter.0.to_k_ip.weight")[0],
                    ip_head_dim=shape("ip_adapter.0.norm_ip_q.scale")[0])
    return c


def config_metadata(c: ICConfig):
    """The safetensors metadata cameo writes beside the adapter weights (head sizes)."""
    return {"ic.head_dim": str(c.attention_head_dim), "ic.resampler_head_dim": str(c.dim_head),
            "ic.ip_head_dim": str(c.ip_head_dim)}


if __name__ == "__main__":
    for name, c in (("full", IC_FULL), ("tiny", IC_TINY)):
        with torch.device("meta"):
            a = ICAdapter(c)
        n_proj = sum(p.numel() for p in a.image_proj.parameters())
        n_ip = sum(p.numel() for p in a.ip_adapter.parameters())
        print(f"{name}: image_proj {n_proj:,} + ip_adapter {n_ip:,} = {n_proj + n_ip:,}")

"""ic_reference_ip.py — a PyTorch transcription of InstantCharacter's IP attention
(models/attn_processor.py FluxIPAttnProcessor and models/norm_layer.py RMSNorm; spec §2.7),
written from the spec as a diffusers attention processor so a diffusers FluxTransformer2DModel
(0.33 .. 0.42 FluxAttention API) runs with it. InstantCharacter itself is not on PyPI.

Usage:
    procs = install_ip_processors(transformer, ip_dim)        # nn.ModuleList, 0..n_double-1 double, then single
    out = transformer(..., joint_attention_kwargs=ip_kwargs(txt_len, ip_tokens, scale))

State-dict keys of `procs` match the released checkpoint's "ip_adapter" dict:
    {i}.norm_ip_q.scale, {i}.to_k_ip.weight/.bias, {i}.norm_ip_k.scale, {i}.to_v_ip.weight/.bias
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.embeddings import apply_rotary_emb


class ICRMSNorm(nn.Module):
    """InstantCharacter's RMSNorm: y = scale * x / (||x||_2 * d^-1/2 + eps) — eps added to the
    RMS, not inside the sqrt; no dtype upcast; parameter named `scale`."""

    def __init__(self, d, eps=1e-8):
        super().__init__()
        self.d = d
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(d))

    def forward(self, x):
        rms = x.norm(2, dim=-1, keepdim=True) * self.d ** (-1.0 / 2)
        return self.scale * (x / (rms + self.eps))


class FluxIPAttnProcessor(nn.Module):
    """One per FLUX attention layer. The IP query is the block's RAW to_q output (before the
    block's q-norm and RoPE), image tokens only; K, V come from the projector tokens; no RoPE.
    The result, times subject_emb_dict['scale'] (1.0 when absent), is added to the image
    tokens' attention output before to_out (double block) or in place into the image slice of
    the joint output (single block, which has no to_out; proj_out follows in the block)."""

    def __init__(self, hidden_size, ip_hidden_states_dim, head_dim=128):
        super().__init__()
        self.norm_ip_q = ICRMSNorm(head_dim, eps=1e-6)
        self.to_k_ip = nn.Linear(ip_hidden_states_dim, hidden_size)
        self.norm_ip_k = ICRMSNorm(head_dim, eps=1e-6)
        self.to_v_ip = nn.Linear(ip_hidden_states_dim, hidden_size)

    def _ip_attention(self, attn, img_query, ip_hidden_states):
        if ip_hidden_states is None:
            return None
        B, L, _ = img_query.shape
        H = attn.heads
        q = self.norm_ip_q(img_query.view(B, L, H, -1).transpose(1, 2))              # [B, H, L, D]
        k = self.to_k_ip(ip_hidden_states)
        k = self.norm_ip_k(k.view(B, k.shape[1], H, -1).transpose(1, 2))             # [B, H, Lip, D]
        v = self.to_v_ip(ip_hidden_states)
        v = v.view(B, v.shape[1], H, -1).transpose(1, 2)                             # [B, H, Lip, D]
        o = F.scaled_dot_product_attention(q.to(v.dtype), k.to(v.dtype), v, dropout_p=0.0, is_causal=False)
        return o.transpose(1, 2).reshape(B, L, -1).to(img_query.dtype)               # [B, L, C]

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 image_rotary_emb=None, emb_dict={}, subject_emb_dict={}, *args, **kwargs):
        B = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)

        txt_len = emb_dict.get('length_encoder_hidden_states', 0)
        img_query = query if encoder_hidden_states is not None else query[:, txt_len:]
        ip_out = self._ip_attention(attn, img_query, subject_emb_dict.get('ip_hidden_states', None))

        H = attn.heads
        head_dim = key.shape[-1] // H
        query = query.view(B, -1, H, head_dim).transpose(1, 2)
        key = key.view(B, -1, H, head_dim).transpose(1, 2)
        value = value.view(B, -1, H, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if encoder_hidden_states is not None:  # double block: text stream first
            eq = attn.add_q_proj(encoder_hidden_states).view(B, -1, H, head_dim).transpose(1, 2)
            ek = attn.add_k_proj(encoder_hidden_states).view(B, -1, H, head_dim).transpose(1, 2)
            ev = attn.add_v_proj(encoder_hidden_states).view(B, -1, H, head_dim).transpose(1, 2)
            if attn.norm_added_q is not None:
                eq = attn.norm_added_q(eq)
            if attn.norm_added_k is not None:
                ek = attn.norm_added_k(ek)
            query = torch.cat([eq, query], dim=2)
            key = torch.cat([ek, key], dim=2)
            value = torch.cat([ev, value], dim=2)

        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb)
            key = apply_rotary_emb(key, image_rotary_emb)

        hs = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False)
        hs = hs.transpose(1, 2).reshape(B, -1, H * head_dim).to(query.dtype)
        scale = subject_emb_dict.get('scale', 1.0)

        if encoder_hidden_states is not None:
            Lt = encoder_hidden_states.shape[1]
            enc, hs = hs[:, :Lt], hs[:, Lt:]
            if ip_out is not None:
                hs = hs + ip_out * scale
            hs = attn.to_out[0](hs)
            hs = attn.to_out[1](hs)
            enc = attn.to_add_out(enc)
            return hs, enc
        if ip_out is not None:
            # the released code assigns into the slice in place; an out-of-place concat is the
            # same value and keeps autograd simple
            hs = torch.cat([hs[:, :txt_len], hs[:, txt_len:] + ip_out * scale], dim=1)
        return hs


def install_ip_processors(transformer, ip_dim):
    """One FluxIPAttnProcessor per entry of transformer.attn_processors, in that order
    (transformer_blocks.* then single_transformer_blocks.*), as InstantCharacter's
    init_ccp_and_attn_processor does. Returns them as an nn.ModuleList (the "ip_adapter" dict)."""
    cfg = transformer.config
    hidden = cfg.num_attention_heads * cfg.attention_head_dim
    procs = {}
    for name in transformer.attn_processors.keys():
        procs[name] = FluxIPAttnProcessor(hidden, ip_dim, head_dim=cfg.attention_head_dim)
    modules = nn.ModuleList(procs.values())  # before set_attn_processor, which empties the dict
    transformer.set_attn_processor(procs)
    return modules


def ip_kwargs(txt_len, ip_tokens, scale):
    """joint_attention_kwargs the processors read: the text length (for the single blocks' image
    slice) and the projector tokens with the subject scale."""
    return {'emb_dict': {'length_encoder_hidden_states': txt_len},
            'subject_emb_dict': {'ip_hidden_states': ip_tokens, 'scale': scale}}

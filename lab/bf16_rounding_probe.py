"""Which of cameo's bf16 rounding points accounts for its distance from diffusers' bf16 FLUX:
FLUX-tiny's forward re-written with each rounding point switchable between diffusers' (several
bf16 roundings) and cameo's fused kernels (f32 inside, one rounding), compared with cameo's
output (lab/bf16_flux's 'out') and diffusers' own bf16 forward. Points: ada (the adaLN
modulation), gate (the gated residual), gelu (the GELU on the f32 GEMM result, cuBLASLt's
epilogue), qk (the q / k norm's output rotated unrounded), cat (the single block's proj_out as two
GEMMs into a bf16 output). The re-write itself sits ~1e-3 (mean rel) from diffusers: the floor.

  python lab/bf16_rounding_probe.py CAMEO_OUT.safetensors"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts'))
from fixtures_flux import LT, img_ids, tiny_config  # noqa: E402
from diffusers import FluxTransformer2DModel  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'flux')
BF = torch.bfloat16
POINTS = ['ada', 'gate', 'gelu', 'qk', 'cat']


def R(t):
    return t.to(BF)


def adanorm(x, scale, shift, fused):
    if fused:
        return R(F.layer_norm(x.float(), x.shape[-1:], eps=1e-6) * (1 + scale.float()[:, None]) + shift.float()[:, None])
    return F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]


def gated(res, gate, y, fused):
    if fused:
        return R(res.float() + gate.float()[:, None] * y.float())
    return res + gate[:, None] * y


def gelu_lin(lin, x, fused):
    if fused:
        return R(F.gelu(F.linear(x.float(), lin.weight.float(), lin.bias.float()), approximate='tanh'))
    return F.gelu(lin(x), approximate='tanh')


def rope(x, cos, sin):  # x [B, L, H, D] f32, tables [L, D]; diffusers' apply_rotary_emb (use_real)
    xr, xi = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    xrot = torch.stack([-xi, xr], dim=-1).flatten(3)
    return x * cos[None, :, None, :] + xrot * sin[None, :, None, :]


# torch's RMSNorm (2.15, CPU) normalises and weighs in f32 and rounds once, like cameo; diffusers then
# rotates the rounded value, cameo the f32 one
def qk(x, norm, fused):  # x [B, L, H, D] bf16 -> normalised: f32 (fused) or bf16 as torch's RMSNorm
    xf = x.float()
    n = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + norm.eps)
    return n * norm.weight.float() if fused else R(n * norm.weight.float())


def roped(parts, cos, sin):  # the streams' normalised q (or k) joined, rotated in f32, rounded once
    return R(rope(torch.cat(parts, 1).float(), cos, sin))


def attention(q, k, v):  # [B, L, H, D]
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return o.transpose(1, 2).flatten(2)


def heads(t, D):
    return t.unflatten(-1, (-1, D))


def forward(m, io, on, trace=None):
    cfg = m.config
    D = cfg.attention_head_dim
    gh, gw = int(io['meta'][0]), int(io['meta'][1])
    ids = torch.cat([torch.zeros(LT, 3), img_ids(gh, gw)])
    cos, sin = m.pos_embed(ids)
    x, txt, pooled = R(io['x']), R(io['txt']), R(io['pooled'])
    h = m.x_embedder(x)
    temb = m.time_text_embed(R(io['sigma']) * 1000, R(io['guidance']) * 1000, pooled)
    c = m.context_embedder(txt)
    for b in m.transformer_blocks:
        ex = b.norm1.linear(b.norm1.silu(temb)).chunk(6, dim=1)  # shift, scale, gate (msa); shift, scale, gate (mlp)
        ec = b.norm1_context.linear(b.norm1_context.silu(temb)).chunk(6, dim=1)
        nx, nc = adanorm(h, ex[1], ex[0], on['ada']), adanorm(c, ec[1], ec[0], on['ada'])
        a = b.attn
        q = roped([qk(heads(a.add_q_proj(nc), D), a.norm_added_q, on['qk']),
                   qk(heads(a.to_q(nx), D), a.norm_q, on['qk'])], cos, sin)
        k = roped([qk(heads(a.add_k_proj(nc), D), a.norm_added_k, on['qk']),
                   qk(heads(a.to_k(nx), D), a.norm_k, on['qk'])], cos, sin)
        v = torch.cat([heads(a.add_v_proj(nc), D), heads(a.to_v(nx), D)], 1)
        o = attention(q, k, v)
        oc, ox = o[:, :LT], o[:, LT:]
        h = gated(h, ex[2], a.to_out[0](ox), on['gate'])
        c = gated(c, ec[2], a.to_add_out(oc), on['gate'])
        f = b.ff.net[2](gelu_lin(b.ff.net[0].proj, adanorm(h, ex[4], ex[3], on['ada']), on['gelu']))
        h = gated(h, ex[5], f, on['gate'])
        f = b.ff_context.net[2](gelu_lin(b.ff_context.net[0].proj, adanorm(c, ec[4], ec[3], on['ada']), on['gelu']))
        c = gated(c, ec[5], f, on['gate'])
        if trace is not None:
            trace.append((c, h))
    hs = torch.cat([c, h], 1)
    for b in m.single_transformer_blocks:
        e = b.norm.linear(b.norm.silu(temb)).chunk(3, dim=1)  # shift, scale, gate
        n = adanorm(hs, e[1], e[0], on['ada'])
        a = b.attn
        q = roped([qk(heads(a.to_q(n), D), a.norm_q, on['qk'])], cos, sin)
        k = roped([qk(heads(a.to_k(n), D), a.norm_k, on['qk'])], cos, sin)
        o = attention(q, k, heads(a.to_v(n), D))
        g = gelu_lin(b.proj_mlp, n, on['gelu'])
        if on['cat']:  # cameo's op_mlp_gelu_cat: o's columns + bias into the bf16 output, then += g's columns
            P = o.shape[-1]
            part = F.linear(o, b.proj_out.weight[:, :P], b.proj_out.bias)
            y = R(part.float() + F.linear(g.float(), b.proj_out.weight[:, P:].float()))
        else:
            y = b.proj_out(torch.cat([o, g], 2))
        hs = gated(hs, e[2], y, on['gate'])
        if trace is not None:
            trace.append((hs[:, :LT], hs[:, LT:]))
    img = hs[:, LT:]
    emb = m.norm_out.linear(m.norm_out.silu(temb))
    scale, shift = emb.chunk(2, dim=1)
    return m.proj_out(adanorm(img, scale, shift, on['ada']))


def err(a, b):
    d = (a.double() - b.double()).abs()
    return d.max().item() / b.double().abs().max().item(), d.mean().item() / b.double().abs().mean().item()


def main():
    cam = load_file(sys.argv[1])['out']
    io = load_file(os.path.join(FIX, 'io.safetensors'))
    m = FluxTransformer2DModel(**tiny_config()).eval()
    m.load_state_dict(load_file(os.path.join(FIX, 'flux_tiny.safetensors')))
    m = m.to(BF)
    with torch.no_grad():
        gh, gw = int(io['meta'][0]), int(io['meta'][1])
        ref = m(hidden_states=R(io['x']), encoder_hidden_states=R(io['txt']), pooled_projections=R(io['pooled']),
                timestep=io['sigma'], img_ids=img_ids(gh, gw), txt_ids=torch.zeros(LT, 3), guidance=io['guidance'],
                return_dict=False)[0]
        base = forward(m, io, {p: False for p in POINTS})
        print('re-written (diffusers rounding) vs diffusers: max %.3e mean %.3e' % err(base, ref))
        print('cameo vs diffusers:                         max %.3e mean %.3e' % err(cam, ref))
        allc = forward(m, io, {p: True for p in POINTS})
        print('cameo vs re-written, all fused:             max %.3e mean %.3e' % err(cam, allc))
        for p in POINTS:
            only = forward(m, io, {q: q == p for q in POINTS})
            print(f'fused {p:5s} only: vs cameo max %.3e mean %.3e | vs diffusers max %.3e mean %.3e'
                  % (err(cam, only) + err(only, ref)))


if __name__ == '__main__':
    main()

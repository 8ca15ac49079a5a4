"""cameo's bf16 FLUX-tiny (lab/bf16_flux's output) against diffusers' FluxTransformer2DModel in
torch.bfloat16 (and float32): the forward on tests/fixtures/flux/io.safetensors and the FLUX
pipeline's Euler loop (FlowMatchEulerDiscreteScheduler, timestep = t.to(bf16) / 1000) from io's x.

  python lab/bf16_vs_diffusers.py CAMEO_OUT.safetensors [STEPS]

Prints max / mean relative error (|a - b| over max |ref|, and mean |a - b| / mean |ref|) of cameo
bf16 vs diffusers bf16, with diffusers bf16 vs diffusers f32 beside it for scale."""
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts'))
from fixtures_flux import IP_DIM, LT, img_ids, tiny_config  # noqa: E402
from ic_reference_ip import install_ip_processors, ip_kwargs  # noqa: E402
from diffusers import FluxTransformer2DModel, FlowMatchEulerDiscreteScheduler  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux import calculate_shift  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'flux')


def err(a, b):
    a, b = a.double(), b.double()
    d = (a - b).abs()
    return d.max().item() / b.abs().max().item(), d.mean().item() / b.abs().mean().item()


def run(dtype, io, steps):
    m = FluxTransformer2DModel(**tiny_config()).eval()
    m.load_state_dict(load_file(os.path.join(FIX, 'flux_tiny.safetensors')))
    procs = install_ip_processors(m, IP_DIM)
    ip = load_file(os.path.join(FIX, 'ip_tiny.safetensors'))
    procs.load_state_dict({k[len('ip_adapter.'):]: v for k, v in ip.items()})
    m, procs = m.to(dtype), procs.to(dtype)
    gh, gw = int(io['meta'][0]), int(io['meta'][1])
    ids_img, ids_txt = img_ids(gh, gw), torch.zeros(LT, 3)
    x, txt, pooled = io['x'].to(dtype), io['txt'].to(dtype), io['pooled'].to(dtype)
    res = {}
    with torch.no_grad():
        def fwd(z, t, g, tok=None):
            return m(hidden_states=z, encoder_hidden_states=txt, pooled_projections=pooled, timestep=t,
                     img_ids=ids_img, txt_ids=ids_txt, guidance=g, return_dict=False,
                     joint_attention_kwargs=ip_kwargs(LT, tok, float(io['ip_scale'][0])))[0]
        res['out'] = fwd(x, io['sigma'], io['guidance'])
        res['out_ip'] = fwd(x, io['sigma'], io['guidance'], io['ip_tokens'].to(dtype))
        # FluxPipeline.__call__'s loop
        sch = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                              base_image_seq_len=256, max_image_seq_len=4096)
        sigmas = np.linspace(1.0, 1 / steps, steps)
        mu = calculate_shift(x.shape[1], 256, 4096, 0.5, 1.15)
        sch.set_timesteps(sigmas=sigmas, mu=mu)
        guidance = torch.full([1], 3.5, dtype=torch.float32).expand(x.shape[0])
        z = x
        for i, t in enumerate(sch.timesteps):
            timestep = t.expand(z.shape[0]).to(z.dtype)
            v = fwd(z, timestep / 1000, guidance)
            res[f'v{i}'] = v
            z = sch.step(v, t, z, return_dict=False)[0]
        res['sample'] = z
    return res


def main():
    cam = load_file(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    io = load_file(os.path.join(FIX, 'io.safetensors'))
    ref16, ref32 = run(torch.bfloat16, io, steps), run(torch.float32, io, steps)
    for k in ['out', 'out_ip'] + [f'v{i}' for i in range(steps)] + ['sample']:
        c_max, c_mean = err(cam[k], ref16[k])
        d_max, d_mean = err(ref16[k], ref32[k])
        e_max, e_mean = err(cam[k], ref32[k])
        print(f'{k:7s} cameo-bf16 vs diffusers-bf16: max {c_max:.3e} mean {c_mean:.3e} | '
              f'vs f32: cameo {e_max:.3e}/{e_mean:.3e} diffusers {d_max:.3e}/{d_mean:.3e}')


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Reference fixtures for the frozen vision towers (SigLIP, DINOv2) and InstantCharacter's
assembled features (spec §2.3-2.4), from tiny random transformers models.

Writes (deterministic, seeded):
  tests/fixtures/siglip/{weights,io}.safetensors
  tests/fixtures/dinov2/{weights,io,weights_mlp,io_mlp,weights_grid,io_grid,features}.safetensors
Weights carry the published checkpoint key names (transformers v4 layout): SigLIP under
"vision_model.", DINOv2 with "attention.attention.query" and the fused SwiGLU "mlp.weights_in".
Gradients are of loss = sum(out * fixed random weights) w.r.t. the input pixels.

Run from the repository root: python3 scripts/fixtures_vision.py
"""
import os
import torch
from safetensors.torch import save_file
from transformers import Dinov2Config, Dinov2Model, SiglipVisionConfig, SiglipVisionModel

OUT = "tests/fixtures"
torch.manual_seed(0)
torch.use_deterministic_algorithms(True)

# tiny sizes: 7-px patches; 30-px inputs leave 2 px unused by the valid patch conv (as 384/14)
SIG = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
           image_size=28, patch_size=7, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
SIG_SHALLOW = (1, 2, 3)  # full size: (7, 13, 26)
# trained grid 6x6 (image 42) interpolated to the 4x4 grid of a 30-px input (as 37 -> 27)
DINO = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, mlp_ratio=4, image_size=42,
            patch_size=7, layer_norm_eps=1e-6, use_swiglu_ffn=True, layerscale_value=1.0, qkv_bias=True)
DINO_SHALLOW = (1, 2, 3)  # full size: (9, 19, 29)
IMG = 30


def rand_(model, std=0.2):
    # non-trivial values everywhere (LayerScale, norms and biases too)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * std + (1.0 if p.ndim == 1 and "norm" in _ and _.endswith("weight") else 0.0))


def siglip_keys(sd):
    return {"vision_model." + k: v.contiguous() for k, v in sd.items()}


def dino_keys(sd):
    out = {}
    for k, v in sd.items():
        k2 = (k.replace("attention.q_proj", "attention.attention.query")
               .replace("attention.k_proj", "attention.attention.key")
               .replace("attention.v_proj", "attention.attention.value")
               .replace("attention.o_proj", "attention.output.dense")
               .replace("mlp.down_proj", "mlp.weights_out"))
        if ".mlp.gate_proj." in k or ".mlp.up_proj." in k:
            continue
        out[k2] = v.contiguous()
    for k in sd:
        if ".mlp.gate_proj." in k:  # published layout: weights_in = cat(gate (silu), up)
            up = k.replace("gate_proj", "up_proj")
            out[k.replace("gate_proj", "weights_in")] = torch.cat([sd[k], sd[up]], 0).contiguous()
    return out


def meta(cfg):
    return {"num_attention_heads": str(cfg["num_attention_heads"])}


def run_tower(model, x, shallow):
    x = x.clone().requires_grad_(True)
    out = model(pixel_values=x, output_hidden_states=True)
    hs = out.hidden_states
    assert len(hs) == model.config.num_hidden_layers + 1
    deep = out.last_hidden_state
    g = torch.Generator().manual_seed(99)
    tensors = {"deep": deep.detach().contiguous()}
    tensors["w_deep"] = torch.randn(deep.shape, generator=g)
    loss = (deep * tensors["w_deep"]).sum()
    for i in shallow:
        tensors[f"hidden.{i}"] = hs[i].detach().contiguous()
        w = torch.randn(hs[i].shape, generator=g)
        tensors[f"w_hidden.{i}"] = w
        loss = loss + (hs[i] * w).sum()
    loss.backward()
    tensors["pixels"] = x.detach().contiguous()
    tensors["grad_pixels"] = x.grad.contiguous()
    tensors["loss"] = loss.detach().reshape(1)
    return tensors


def main():
    os.makedirs(f"{OUT}/siglip", exist_ok=True)
    os.makedirs(f"{OUT}/dinov2", exist_ok=True)
    # --- SigLIP (with the attention-pooling head, as the published file: extra keys to ignore)
    sig = SiglipVisionModel(SiglipVisionConfig(**SIG)).eval()
    rand_(sig)
    x = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(5))
    save_file(siglip_keys(sig.state_dict()), f"{OUT}/siglip/weights.safetensors", metadata=meta(SIG))
    t = run_tower(sig, x, SIG_SHALLOW)
    save_file(t, f"{OUT}/siglip/io.safetensors")

    # --- DINOv2 with SwiGLU, pos-emb interpolated 6x6 -> 4x4
    dino = Dinov2Model(Dinov2Config(**DINO)).eval()
    rand_(dino)
    xd = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(6))
    save_file(dino_keys(dino.state_dict()), f"{OUT}/dinov2/weights.safetensors", metadata=meta(DINO))
    save_file(run_tower(dino, xd, DINO_SHALLOW), f"{OUT}/dinov2/io.safetensors")

    # --- DINOv2 plain MLP (fc1 GELU fc2), 2 layers, input at the trained size (no interpolation)
    dm = dict(DINO, use_swiglu_ffn=False, num_hidden_layers=2, mlp_ratio=2, hidden_act="gelu")
    dino2 = Dinov2Model(Dinov2Config(**dm)).eval()
    rand_(dino2)
    xm = torch.randn(1, 3, 42, 42, generator=torch.Generator().manual_seed(7))
    save_file(dino_keys(dino2.state_dict()), f"{OUT}/dinov2/weights_mlp.safetensors", metadata=meta(dm))
    save_file(run_tower(dino2, xm, (1,)), f"{OUT}/dinov2/io_mlp.safetensors")

    # --- DINOv2 at the full-size grids: the 37x37 table (giant's 518 px) resized to the 27x27 grid
    # of a 384-px view, here with 2-px patches: table for 74 px, a 55-px input (1 px unused)
    dg = dict(DINO, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, image_size=74, patch_size=2)
    dino3 = Dinov2Model(Dinov2Config(**dg)).eval()
    rand_(dino3)
    xg = torch.randn(1, 3, 55, 55, generator=torch.Generator().manual_seed(10))
    save_file(dino_keys(dino3.state_dict()), f"{OUT}/dinov2/weights_grid.safetensors", metadata=meta(dg))
    save_file(run_tower(dino3, xg, (1,)), f"{OUT}/dinov2/io_grid.safetensors")

    # --- InstantCharacter's assembled features (spec §2.4) from [0,1] images:
    # low [B,3,S,S] and high [B,3,2S,2S] cut into TL, TR, BL, BR crops of S
    B = 2
    gi = torch.Generator().manual_seed(8)
    low = torch.rand(B, 3, IMG, IMG, generator=gi).requires_grad_(True)
    high = torch.rand(B, 3, 2 * IMG, 2 * IMG, generator=gi).requires_grad_(True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    sig_n = lambda im: (im - 0.5) / 0.5
    dino_n = lambda im: (im - mean) / std
    S = IMG
    crops = torch.stack([high[:, :, :S, :S], high[:, :, :S, S:], high[:, :, S:, :S], high[:, :, S:, S:]], 1)
    crops = crops.reshape(B * 4, 3, S, S)  # '(b n)'
    so = sig(pixel_values=sig_n(low), output_hidden_states=True)
    do = dino(pixel_values=dino_n(low), output_hidden_states=True)
    low_deep = torch.cat([so.last_hidden_state, do.last_hidden_state[:, 1:]], -1)
    low_shallow = torch.cat([torch.cat([so.hidden_states[i] for i in SIG_SHALLOW], 1),
                             torch.cat([do.hidden_states[i][:, 1:] for i in DINO_SHALLOW], 1)], -1)
    sc = sig(pixel_values=sig_n(crops)).last_hidden_state
    dc = dino(pixel_values=dino_n(crops)).last_hidden_state[:, 1:]
    L = sc.shape[1]
    high_deep = torch.cat([sc.reshape(B, 4 * L, -1), dc.reshape(B, 4 * L, -1)], -1)
    g = torch.Generator().manual_seed(9)
    w1, w2, w3 = (torch.randn(t.shape, generator=g) for t in (low_deep, low_shallow, high_deep))
    loss = (low_deep * w1).sum() + (low_shallow * w2).sum() + (high_deep * w3).sum()
    loss.backward()
    save_file({"low": low.detach(), "high": high.detach(), "low_res_deep": low_deep.detach().contiguous(),
               "low_res_shallow": low_shallow.detach().contiguous(), "high_res_deep": high_deep.detach().contiguous(),
               "w_low_res_deep": w1, "w_low_res_shallow": w2, "w_high_res_deep": w3,
               "grad_low": low.grad.contiguous(), "grad_high": high.grad.contiguous()},
              f"{OUT}/dinov2/features.safetensors")
    for d in ("siglip", "dinov2"):
        for f in sorted(os.listdir(f"{OUT}/{d}")):
            print(f"{OUT}/{d}/{f}", os.path.getsize(f"{OUT}/{d}/{f}"))


if __name__ == "__main__":
    main()

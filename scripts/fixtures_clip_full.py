#!/usr/bin/env python3
"""Reference fixtures for evaluation's CLIP scores: a tiny random full CLIPModel (text and vision
towers with their projections) and CLIPImageProcessor's PIL backend on two images.

Writes (deterministic, seeded):
  tests/fixtures/clip_full/model/model.safetensors   the CLIPModel's weights by the published keys
                                               ("text_model.", "vision_model.", "visual_projection.weight",
                                               "text_projection.weight")
  tests/fixtures/clip_full/model/config.json   its CLIPConfig (heads, eps, eos_token_id are not in the shapes)
  tests/fixtures/clip_full/model/vocab.json, merges.txt   the tiny CLIP tokenizer of tests/fixtures/clip
  tests/fixtures/clip_full/rect.png            a 40x56 image (the crop case)
  tests/fixtures/clip_full/io.safetensors      pixel_values [2, 3, 16, 16] -> image_embeds [2, 16];
                                               input_ids [2, 16] (two prompts, padded with eos) -> text_embeds;
                                               proc_a / proc_rect [1, 3, 16, 16]: CLIPImageProcessorPil
                                               (shortest edge 16, centre crop 16) of
                                               docs/examples/eval/ref-a.png and rect.png

Run from the repository root: python3 scripts/fixtures_clip_full.py
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

OUT = "tests/fixtures/clip_full"
MODEL = OUT + "/model"  # a folder as the published repo has it: weights, config, tokenizer
TOK = "tests/fixtures/clip"
torch.manual_seed(0)

TEXT = dict(vocab_size=774, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=16, hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=2,
            bos_token_id=0, pad_token_id=1)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=16,
              patch_size=4, hidden_act="quick_gelu", layer_norm_eps=1e-5)


def rand_(model, std=0.2):
    g = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            base = 1.0 if p.ndim == 1 and ("norm" in name or "layrnorm" in name) and name.endswith("weight") else 0.0
            p.copy_(torch.randn(p.shape, generator=g) * std + base)


def main():
    os.makedirs(MODEL, exist_ok=True)
    cfg = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=16)
    m = CLIPModel(cfg).eval()
    rand_(m)
    sd = {k: v.contiguous() for k, v in m.state_dict().items() if not k.endswith("position_ids")}
    assert "visual_projection.weight" in sd and any(k.startswith("text_model.") for k in sd), sorted(sd)[:8]
    save_file(sd, f"{MODEL}/model.safetensors")
    with open(f"{MODEL}/config.json", "w") as f:
        json.dump({"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 16,
                   "text_config": TEXT, "vision_config": VISION}, f, indent=2)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(f"{TOK}/{name}", f"{MODEL}/{name}")

    g = torch.Generator().manual_seed(7)
    pixels = torch.randn(2, 3, 16, 16, generator=g)
    tok = CLIPTokenizer(tokenizer_file=f"{TOK}/tokenizer.json")  # 774 ids, bos 772, eos = pad 773 (the largest)
    prompts = ["a character with a red coat", "a photo of a cat"]
    ids = tok(prompts, padding="max_length", max_length=16, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        img = m.get_image_features(pixel_values=pixels)
        txt = m.get_text_features(input_ids=ids)
    img = getattr(img, "pooler_output", img)  # transformers 5 may return an output object
    txt = getattr(txt, "pooler_output", txt)

    rng = np.random.default_rng(3)
    rect = (rng.integers(0, 256, (56, 40, 3))).astype(np.uint8)
    rect[:, :, 1] = np.arange(40, dtype=np.uint8)[None, :] * 6
    Image.fromarray(rect).save(f"{OUT}/rect.png")
    proc = CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    pa = proc(images=Image.open("docs/examples/eval/ref-a.png").convert("RGB"), return_tensors="pt").pixel_values
    pr = proc(images=Image.open(f"{OUT}/rect.png").convert("RGB"), return_tensors="pt").pixel_values
    save_file({"pixel_values": pixels.contiguous(), "image_embeds": img.contiguous(),
               "input_ids": ids.to(torch.int32).contiguous(), "text_embeds": txt.contiguous(),
               "proc_a": pa.contiguous(), "proc_rect": pr.contiguous()}, f"{OUT}/io.safetensors")
    print("ids", ids.tolist())
    print("wrote", OUT)


if __name__ == "__main__":
    main()

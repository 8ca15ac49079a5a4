#!/usr/bin/env python3
"""bench_torch_freeze.py CAMEO — adapter.freeze in the PyTorch twin of `cameo bench train`
(scripts/bench_train_torch.py): the twin holds fixed the same adapter weights as cameo, by the same
names. For each prefix, cameo's count (`cameo bench train --no-torch`, the line "adapter.freeze: N of
M adapter tensors held fixed (P of Q parameters)") against the twin's freeze_adapter on the same tiny
models; a prefix naming nothing is refused; the held weights get no gradient and no AdamW state.
Exits 77 (skipped) without torch / diffusers / transformers."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twin_check import Checks, btt, run_twin, torch  # noqa: E402  (exits 77 without torch)

cameo = sys.argv[1]
check = Checks("bench_torch_freeze")


# configs/tiny.yaml's model.tiny (the embedded config cameo bench train runs)
TINY = dict(flux_double=2, flux_single=2, flux_heads=2, flux_head_dim=16, vision_hidden=32, vision_layers=2, vision_heads=2,
            vision_patch=7, vision_image=28, text_dim=32, text_len=16, pooled_dim=16, proj_heads=2, proj_head_dim=16,
            proj_layers=1, proj_queries=8, proj_depth=1, vae_channels=16, latent_channels=16)


def cameo_counts(prefixes):
    r = subprocess.run([cameo, "bench", "train", "--no-torch", "--steps", "1", "--warmup", "0", "--set", "run.threads=1",
                        "--set", "adapter.freeze=[%s]" % ", ".join(prefixes)], capture_output=True, text=True, timeout=300)
    m = re.search(r"adapter\.freeze: (\d+) of (\d+) adapter tensors held fixed \((\d+) of (\d+) parameters\)", r.stdout)
    check(r.returncode == 0 and m, f"cameo bench train with adapter.freeze {prefixes}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return None if not m else tuple(int(x) for x in m.groups())  # held tensors, tensors, held params, params


for prefixes in (["image_proj"], ["ip_adapter.1", "image_proj.cross_layer_blocks.0"], ["ip_adapter"]):
    want = cameo_counts(prefixes)
    torch.manual_seed(0)
    M = btt.build(TINY)
    n, nh, p, ph = btt.freeze_adapter(M["adapter"], prefixes)
    check(want == (nh, n, ph, p), f"adapter.freeze {prefixes}: the twin holds {nh} of {n} tensors ({ph} of {p} parameters), "
          f"cameo {want}")
    stray = [k for k, q in M["adapter"] if not q.requires_grad and not any(k == x or k.startswith(x + ".") for x in prefixes)]
    check(not stray, f"adapter.freeze {prefixes} held weights it does not name: {stray[:3]}")

# whole name parts only, and a prefix naming nothing is refused (as cameo's stage_freeze_adapter)
M = btt.build(TINY)
try:
    btt.freeze_adapter(M["adapter"], ["ip_adapt"])
    check(False, "adapter.freeze 'ip_adapt' (part of a name part) was taken")
except SystemExit as e:
    check("names no adapter weight" in str(e), f"adapter.freeze 'ip_adapt': {e}")

# the whole twin with --freeze: the held weights get no gradient and no AdamW state; it says what it held
dims = dict(TINY, flux_double=1, flux_single=1, vision_layers=1, vision_image=14, text_len=8, proj_queries=4, vae_channels=8)
seen = {}


def spy(opt):  # what the optimizer holds and which gradients it finds
    seen["params"] = [q for g in opt.param_groups for q in g["params"]]


j = run_twin(["--threads", "1", "--steps", "1", "--warmup", "0", "--batch", "1", "--height", "32", "--width", "32", "--ref",
              "14", "--dims", json.dumps(dims), "--freeze", "image_proj"], spy)
M = btt.build(dims)
want = btt.freeze_adapter(M["adapter"], ["image_proj"])
check((j.get("adapter_tensors"), j.get("adapter_tensors_held"), j.get("params_adapter"), j.get("params_adapter_held")) == want,
      f"the twin's JSON: {j.get('adapter_tensors_held')} of {j.get('adapter_tensors')} tensors held, want {want}")
check(len(seen.get("params", [])) == want[0] - want[1], f"AdamW holds {len(seen.get('params', []))} tensors, want the "
      f"{want[0] - want[1]} trained ones")
check.exit()

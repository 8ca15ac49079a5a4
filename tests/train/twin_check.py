"""twin_check.py — what the tests of the PyTorch twin (scripts/bench_train_torch.py) share: the test is
skipped (exit 77) without torch / diffusers / transformers; the twin as `btt`; a failure counter; the
twin's main run with given arguments and the optimizer watched at each step."""
import contextlib
import io
import json
import os
import sys

try:
    import torch
    import diffusers  # noqa: F401
    import transformers  # noqa: F401
except ImportError:
    print("note: no torch / diffusers / transformers for python3: skipped")
    raise SystemExit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import bench_train_torch as btt  # noqa: E402,F401


class Checks:
    """check(ok, msg) counts a failure; check.exit() prints the verdict and exits 1 on any"""

    def __init__(self, name):
        self.name, self.fails = name, 0

    def __call__(self, ok, msg):
        if not ok:
            print("FAIL:", msg)
            self.fails += 1

    def exit(self):
        print("%s: %s" % (self.name, "ok" if not self.fails else f"{self.fails} failure(s)"))
        sys.exit(1 if self.fails else 0)


def run_twin(args, spy):
    """btt.main() on ARGS (after the program name), spy(optimizer) before each AdamW step: the twin's JSON"""
    step0 = torch.optim.AdamW.step

    def step(self, *a, **k):
        spy(self)
        return step0(self, *a, **k)

    argv, sys.argv = sys.argv, ["bench_train_torch.py"] + args
    torch.optim.AdamW.step = step
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            btt.main()
    finally:
        torch.optim.AdamW.step, sys.argv = step0, argv
    return json.loads(out.getvalue())

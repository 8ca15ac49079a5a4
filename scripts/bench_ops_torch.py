#!/usr/bin/env python3
"""PyTorch CPU figures for `cameo bench ops`: the same rows, the same FLOP counts, one GFLOP/s
number per line in row order. Run by the C benchmark, which passes its shapes (--rows, --mlp
--width), --reps and --threads; prints nothing if torch is missing."""
import argparse, time
try:
    import torch
except ImportError:
    raise SystemExit(0)
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--reps", type=int, default=0, help="timed runs after one warm-up, the best kept (default 3; 1 with --quick)")
ap.add_argument("--rows", default="", help="kind:a:b:c,... (linear:T:K:N, attention:T:H:D) instead of the built-in rows")
ap.add_argument("--mlp", type=int, default=0, help="instead: ms of FLUX's MLPs (frozen weights) at L tokens")
ap.add_argument("--width", type=int, default=3072, help="the MLPs' width C (hidden 4C)")
a = ap.parse_args()
torch.set_num_threads(a.threads)
rows = [("linear", 1024, 256, 1024), ("linear", 1024, 1024, 1024), ("linear", 4096, 1024, 1024), ("linear", 1024, 3072, 3072),
        ("attention", 1024, 8, 64), ("attention", 4096, 4, 64), ("attention", 1024, 4, 128)]
if a.quick:
    rows = [rows[0], rows[1], rows[4]]
if a.rows:
    rows = [(k, int(x), int(y), int(z)) for k, x, y, z in (r.split(":") for r in a.rows.split(","))]
reps = a.reps or (1 if a.quick else 3)

def best(fn):
    b = 1e30
    for r in range(reps + 1):
        t0 = time.perf_counter(); fn(); dt = time.perf_counter() - t0
        if r: b = min(b, dt)
    return b

if a.mlp:  # the rows of bench_mlp: Linear-GELU(tanh)-Linear, then proj_out([pre | MLP]); dx (and dpre) only
    L, C = a.mlp, a.width
    g = lambda *s: torch.randn(*s) * 0.5
    x, pre = g(1, L, C).requires_grad_(), g(1, L, C).requires_grad_()
    w1, b1, gy = g(4 * C, C), g(4 * C), g(1, L, C)
    F = torch.nn.functional
    for cat in (False, True):
        w2, b2 = g(C, (5 if cat else 4) * C), g(C)
        def step():
            a_ = F.gelu(F.linear(x, w1, b1), approximate="tanh")
            y = F.linear(torch.cat([pre, a_], -1) if cat else a_, w2, b2)
            y.backward(gy); x.grad = pre.grad = None
        print(best(step) * 1e3, flush=True)
    raise SystemExit(0)

for kind, x, y, z in rows:
    if kind == "linear":
        X = torch.randn(x, y, requires_grad=True); W = torch.randn(z, y, requires_grad=True); B = torch.randn(z, requires_grad=True)
        def step():
            torch.nn.functional.linear(X, W, B).sum().backward(); X.grad = W.grad = B.grad = None
        print(6.0 * x * y * z / best(step) / 1e9, flush=True)
    else:
        q, k, v = (torch.randn(1, y, x, z, requires_grad=True) for _ in range(3))
        def step():
            torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward(); q.grad = k.grad = v.grad = None
        print(12.0 * x * x * z * y / best(step) / 1e9, flush=True)

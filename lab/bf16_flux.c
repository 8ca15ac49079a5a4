// bf16_flux.c — FLUX-tiny (tests/fixtures/flux) forward and a short Euler sampling loop on a
// device and dtype of choice, outputs written f32 for lab/bf16_vs_diffusers.py to compare with
// diffusers' FluxTransformer2DModel in torch.bfloat16.
//   bash lab/build.sh [BUILD_DIR]   (default build-emu: the CUDA kernels on the CPU)
//   CUDA_EMU_DEVICES=1 build-emu/bf16_flux DEVICE DTYPE OUT.safetensors [STEPS]
//   (DEVICE cpu | cuda:0, DTYPE f32 | bf16; run from the repository root)
// The loop is the sampler's (eval/sample.c: eval_sigmas, eval_step_times, eval_euler_step), started from io's x as
// the noise, without the IP branch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "eval/sample.h"
#include "models/flux.h"
#include "models/ip_attn.h"
#include "models/safetensors.h"

#define DIR "tests/fixtures/flux/"

static cm_tensor *load(st_file *io, const char *name, cm_dtype dt, cm_device dev) {
    const st_entry *e = st_find(io, name);
    if (!e) { fprintf(stderr, "bf16_flux: %s not in io.safetensors\n", name); exit(1); }
    cm_tensor *t = st_to_tensor(e, CM_DEV_CPU, NULL, 0);
    cm_tensor *c = op_cast(t, dt), *d = op_to_device(c, dev);
    tensor_release(t);
    tensor_release(c);
    return d;
}

static void add(st_writer *w, const char *name, cm_tensor *t) {
    int64_t n = tensor_numel(t);
    float *buf = malloc(n * sizeof *buf);
    tensor_copy_to_host(t, CM_F32, buf);
    st_writer_add_copy(w, name, CM_F32, t->ndim, t->shape, buf);
    free(buf);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: bf16_flux cpu|cuda:0 f32|bf16 OUT.safetensors [STEPS]\n"); return 2; }
    cm_device dev = strcmp(argv[1], "cpu") ? (cm_device){CM_CUDA, 0} : CM_DEV_CPU;
    cm_dtype dt = strcmp(argv[2], "bf16") ? CM_F32 : CM_BF16;
    int steps = argc > 4 ? atoi(argv[4]) : 4;
    char err[512];
    flux_config c = flux_config_tiny();
    cm_params ps;
    params_init_registry(&ps, dev, dt, false);
    flux_model m;
    if (flux_init(&m, &c, &ps, err, sizeof err) || flux_load(&m, &ps, DIR "flux_tiny.safetensors", err, sizeof err)) {
        fprintf(stderr, "bf16_flux: %s\n", err);
        return 1;
    }
    st_file *io = st_open(DIR "io.safetensors", err, sizeof err);
    if (!io) { fprintf(stderr, "bf16_flux: %s\n", err); return 1; }
    autograd_no_grad_push();
    cm_tensor *meta = load(io, "meta", CM_F32, CM_DEV_CPU);
    int gh = (int)tensor_get(meta, 0), gw = (int)tensor_get(meta, 1);
    cm_tensor *x = load(io, "x", dt, dev), *txt = load(io, "txt", dt, dev), *pooled = load(io, "pooled", dt, dev);
    cm_tensor *sigma = load(io, "sigma", dt, dev), *guid = load(io, "guidance", dt, dev);
    st_writer *w = st_writer_new();
    cm_tensor *out = flux_forward(&m, x, txt, pooled, sigma, guid, gh, gw, NULL, NULL, 0.0, 0);
    add(w, "out", out);
    tensor_release(out);

    // with the IP branch (ip_tiny.safetensors, io's tokens and scale)
    cm_params ips;
    params_init_registry(&ips, dev, dt, false);
    ip_attn ip;
    ip_attn_config ic = {.n_modules = c.num_layers + c.num_single_layers, .heads = c.heads, .head_dim = c.head_dim,
                         .ip_dim = (int)tensor_get(meta, 4)};
    ip_attn_init(&ip, &ic, &ips, "ip_adapter");
    if (params_load(&ips, DIR "ip_tiny.safetensors", NULL, true, NULL, err, sizeof err)) {
        fprintf(stderr, "bf16_flux: %s\n", err);
        return 1;
    }
    cm_tensor *tok = load(io, "ip_tokens", dt, dev), *sc = load(io, "ip_scale", CM_F32, CM_DEV_CPU);
    out = flux_forward(&m, x, txt, pooled, sigma, guid, gh, gw, &ip, tok, tensor_get(sc, 0), 0);
    add(w, "out_ip", out);
    tensor_release(out);

    // the sampler's loop from x, guidance 3.5 for both samples
    double sig[1025];
    eval_sigmas(steps, x->shape[1], sig);
    cm_tensor *g = tensor_full(dt, SHAPE(x->shape[0]), 3.5, dev), *z = tensor_retain(x);
    for (int i = 0; i < steps; i++) {
        double tv, sv;
        eval_step_times(sig[i], dt, &tv, &sv);
        cm_tensor *s = tensor_full(dt, SHAPE(x->shape[0]), sv, dev);
        cm_tensor *v = flux_forward(&m, z, txt, pooled, s, g, gh, gw, NULL, NULL, 0.0, 0);
        cm_tensor *nz = eval_euler_step(z, v, sig[i], sig[i + 1]);
        char name[32];
        snprintf(name, sizeof name, "v%d", i);
        add(w, name, v);
        tensor_release(s);
        tensor_release(v);
        tensor_release(z);
        z = nz;
    }
    add(w, "sample", z);
    if (st_writer_save(w, argv[3], err, sizeof err)) { fprintf(stderr, "bf16_flux: %s\n", err); return 1; }
    st_writer_free(w);
    printf("bf16_flux: %s %s -> %s (%d steps)\n", argv[1], argv[2], argv[3], steps);
    return 0;
}

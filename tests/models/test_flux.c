// test_flux.c — FLUX-tiny with InstantCharacter's IP attention against diffusers'
// FluxTransformer2DModel running scripts/ic_reference_ip.py's processors (fixture from
// scripts/fixtures_flux.py): RoPE tables, latent packing, the forward with and without the IP
// branch, and the gradients of sum(out * w) w.r.t. the IP parameters, the IP tokens, the packed
// latents and the text states, with FLUX frozen.
#include <string.h>
#include "autograd/autograd.h"
#include "models/flux.h"
#include "models/ip_attn.h"
#include "models/safetensors.h"
#include "fixture.h"
#include "testutil.h"

#define DIR "tests/fixtures/flux/"

int main(void) {
    char err[512];
    flux_config c = flux_config_tiny();
    cm_params fps, ips;
    params_init_registry(&fps, CM_DEV_CPU, CM_F32, false);  // FLUX frozen
    params_init_registry(&ips, CM_DEV_CPU, CM_F32, true);   // the adapter trains
    flux_model m;
    TEST_CHECK(flux_init(&m, &c, &fps, err, sizeof err) == 0, "init: %s", err);
    TEST_CHECK(params_count(&fps, false) == flux_param_count(&c), "registered %lld, counted %lld",
               (long long)params_count(&fps, false), (long long)flux_param_count(&c));
    TEST_CHECK(flux_load(&m, &fps, DIR "flux_tiny.safetensors", err, sizeof err) == 0, "load: %s", err);

    st_file *io = st_open(DIR "io.safetensors", err, sizeof err);
    TEST_CHECK(io != NULL, "%s", err);
    if (!io) return test_summary("test_flux");
    cm_tensor *meta = fixture_tensor(io, "meta");  // gh, gw, Lt, Lip, ip_dim
    const int gh = (int)tensor_get(meta, 0), gw = (int)tensor_get(meta, 1), Lt = (int)tensor_get(meta, 2);
    const int ip_dim = (int)tensor_get(meta, 4);
    cm_tensor *sc = fixture_tensor(io, "ip_scale");
    const double ip_scale = tensor_get(sc, 0);  // 0.9: not 1, so a missing scale shows
    tensor_release(sc);
    ip_attn ip;
    ip_attn_config ic = {.n_modules = c.num_layers + c.num_single_layers, .heads = c.heads, .head_dim = c.head_dim,
                         .ip_dim = ip_dim};
    ip_attn_init(&ip, &ic, &ips, "ip_adapter");
    TEST_CHECK(params_count(&ips, false) == ip_attn_param_count(&ic), "ip registered %lld, counted %lld",
               (long long)params_count(&ips, false), (long long)ip_attn_param_count(&ic));
    int n_extra = -1;
    TEST_CHECK(params_load(&ips, DIR "ip_tiny.safetensors", NULL, true, &n_extra, err, sizeof err) == 0, "ip load: %s", err);

    // RoPE tables over (0, r, c): f64 math then f32, so they match to rounding
    cm_tensor *cs, *sn;
    flux_rope_tables(&c, Lt, gh, gw, CM_F32, CM_DEV_CPU, &cs, &sn);
    cm_tensor *rc = fixture_tensor(io, "rope_cos"), *rs = fixture_tensor(io, "rope_sin");
    double e_cos = fixture_rel_err(cs, rc), e_sin = fixture_rel_err(sn, rs);
    TEST_CHECK(e_cos <= 1e-7 && e_sin <= 1e-7, "rope tables: cos %.3g sin %.3g", e_cos, e_sin);
    printf("rope tables: max rel err cos %.3g sin %.3g\n", e_cos, e_sin);
    // a bf16 model keeps the tables f32 (diffusers' FluxPosEmbed output; the rope ops rotate a bf16
    // q / k in f32): rounded to bf16, about 1 in 9 rotated values moved by a bf16 step
    cm_tensor *bc, *bs;
    flux_rope_tables(&c, Lt, gh, gw, CM_BF16, CM_DEV_CPU, &bc, &bs);
    TEST_CHECK(bc->dtype == CM_F32 && bs->dtype == CM_F32, "bf16 model: rope tables %s / %s (want f32)",
               dtype_name(bc->dtype), dtype_name(bs->dtype));
    if (bc->dtype == CM_F32 && bs->dtype == CM_F32)
        TEST_CHECK(fixture_rel_err(bc, cs) == 0 && fixture_rel_err(bs, sn) == 0, "bf16 model: the f32 tables' values");
    tensor_release(bc), tensor_release(bs);

    // FLUX.1-dev's axes over a 64 x 64 grid (1024^2) after 2 text ids, at a few rows: positions up
    // to 63 make the angle rounding visible if the table were computed in f32 (it must not be)
    flux_config dev = flux_config_dev();
    cm_tensor *dc, *ds;
    flux_rope_tables(&dev, 2, 64, 64, CM_F32, CM_DEV_CPU, &dc, &ds);
    cm_tensor *rows = fixture_tensor(io, "rope_dev_rows"), *wdc = fixture_tensor(io, "rope_dev_cos"), *wds = fixture_tensor(io, "rope_dev_sin");
    double e_dev = 0;
    for (int64_t r = 0; r < tensor_numel(rows); r++) {
        int64_t row = (int64_t)tensor_get(rows, r);
        for (int d = 0; d < 128; d++) {
            e_dev = test_max(e_dev, fabs(tensor_get(dc, row * 128 + d) - tensor_get(wdc, r * 128 + d)));
            e_dev = test_max(e_dev, fabs(tensor_get(ds, row * 128 + d) - tensor_get(wds, r * 128 + d)));
        }
    }
    TEST_CHECK(e_dev <= 1e-7, "dev RoPE rows: max abs err %.3g", e_dev);  // f64 then f32 rounding: ~6e-8
    printf("dev RoPE rows (64x64 grid): max abs err %.3g\n", e_dev);
    cm_tensor *drop[] = {dc, ds, rows, wdc, wds};
    for (int i = 0; i < 5; i++) tensor_release(drop[i]);

    // packing is a pure permutation: exact
    cm_tensor *lat = fixture_tensor(io, "latents"), *x = fixture_tensor(io, "x");
    cm_tensor *packed = flux_pack_latents(lat);
    TEST_CHECK(fixture_rel_err(packed, x) == 0, "pack_latents differs from diffusers _pack_latents");
    cm_tensor *unpacked = flux_unpack_latents(packed, (int)lat->shape[2], (int)lat->shape[3]);
    TEST_CHECK(fixture_rel_err(unpacked, lat) == 0, "unpack(pack(z)) != z");

    cm_tensor *txt = fixture_tensor(io, "txt"), *pooled = fixture_tensor(io, "pooled"), *sigma = fixture_tensor(io, "sigma"), *guid = fixture_tensor(io, "guidance");
    cm_tensor *tok = fixture_tensor(io, "ip_tokens"), *w = fixture_tensor(io, "loss_w");
    tensor_set_requires_grad(x, true);
    tensor_set_requires_grad(txt, true);
    tensor_set_requires_grad(tok, true);

    // plain FLUX (no IP branch), no grad
    autograd_no_grad_push();
    cm_tensor *out0 = flux_forward(&m, x, txt, pooled, sigma, guid, gh, gw, NULL, NULL, 0, 0);
    autograd_no_grad_pop();
    cm_tensor *want0 = fixture_tensor(io, "out_noip");
    double e0 = fixture_rel_err(out0, want0);
    tensor_release(want0);
    // f32 through 4 blocks of attention and sin(1000 sigma) embeddings: ~4e-7 measured, 2e-5 allowed
    // (other thread counts / BLAS change summation order)
    TEST_CHECK(e0 <= 2e-5, "forward without IP: %.3g", e0);
    printf("forward without IP: max rel err %.3g\n", e0);

    // with IP, backward
    cm_tensor *out = flux_forward(&m, x, txt, pooled, sigma, guid, gh, gw, &ip, tok, ip_scale, 0);
    cm_tensor *want1 = fixture_tensor(io, "out");
    double e1 = fixture_rel_err(out, want1);
    tensor_release(want1);
    TEST_CHECK(e1 <= 2e-5, "forward with IP: %.3g", e1);
    printf("forward with IP: max rel err %.3g\n", e1);
    cm_tensor *loss = fixture_dot(out, w);
    autograd_backward(loss, NULL);

    // gradients: a longer chain (back through every block): ~2e-6 measured, 5e-5 allowed
    struct { const char *name; cm_tensor *t; } g[] = {{"grad.x", x}, {"grad.txt", txt}, {"grad.ip_tokens", tok}};
    double worst = 0;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        cm_tensor *want = fixture_tensor(io, g[i].name);
        double e = fixture_rel_err(g[i].t->grad, want);
        TEST_CHECK(e <= 5e-5, "%s: %.3g", g[i].name, e);
        printf("%-40s max rel err %.3g\n", g[i].name, e);
        worst = test_max(worst, e);
        tensor_release(want);
    }
    for (int i = 0; i < ips.n; i++) {
        char key[NAME_MAX_LEN + 8];
        snprintf(key, sizeof key, "grad.%s", ips.items[i].name);
        cm_tensor *want = fixture_tensor(io, key);
        double e = fixture_rel_err(ips.items[i].t->grad, want);
        TEST_CHECK(e <= 5e-5, "%s: %.3g", key, e);
        worst = test_max(worst, e);
        tensor_release(want);
    }
    printf("IP parameter gradients (%d tensors): worst max rel err %.3g\n", ips.n, worst);
    int flux_grads = 0;
    for (int i = 0; i < fps.n; i++) flux_grads += fps.items[i].t->grad != NULL;
    TEST_CHECK(flux_grads == 0, "%d frozen FLUX weights received a gradient", flux_grads);

    tensor_release(loss);
    tensor_release(out);
    tensor_release(out0);
    tensor_release(packed);
    tensor_release(unpacked);
    tensor_release(cs);
    tensor_release(sn);
    tensor_release(rc);
    tensor_release(rs);
    cm_tensor *all[] = {meta, lat, x, txt, pooled, sigma, guid, tok, w};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        tensor_zero_grad(all[i]);
        tensor_release(all[i]);
    }
    for (int i = 0; i < ips.n; i++) tensor_zero_grad(ips.items[i].t);
    st_close(io);
    flux_free(&m);
    ip_attn_free(&ip);
    params_free(&fps);
    params_free(&ips);
    return test_summary("test_flux");
}

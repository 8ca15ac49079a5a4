// test_flux_weights.c — FLUX weights as published: parameter counts without allocation
// (FLUX.1-dev 11,901,408,320; the 57 IP modules 1,434,816,768), size and layout detection, the
// single-file BFL layout (fused qkv / linear1, swapped final modulation, optional
// "model.diffusion_model." prefix) loading to exactly the diffusers weights, and bad files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "autograd/autograd.h"
#include "models/flux.h"
#include "models/ip_attn.h"
#include "models/safetensors.h"
#include "testutil.h"

#define DIR "tests/fixtures/flux/"

static bool same_config(const flux_config *a, const flux_config *b) {
    return a->in_channels == b->in_channels && a->out_channels == b->out_channels && a->num_layers == b->num_layers &&
           a->num_single_layers == b->num_single_layers && a->heads == b->heads && a->head_dim == b->head_dim &&
           a->joint_dim == b->joint_dim && a->pooled_dim == b->pooled_dim && a->guidance_embeds == b->guidance_embeds &&
           a->axes_dim[0] == b->axes_dim[0] && a->axes_dim[1] == b->axes_dim[1] && a->axes_dim[2] == b->axes_dim[2] &&
           a->mlp_ratio == b->mlp_ratio;
}

// a copy of src (a safetensors file) with `drop` left out, `prefix` prepended to every name, and
// `reshape` (if any) written with one row less
static void rewrite(const char *src, const char *dst, const char *drop, const char *prefix, const char *reshape) {
    char err[512];
    st_file *f = st_open(src, err, sizeof err);
    if (!f) cm_die("test_flux_weights", "%s", err);
    st_writer *w = st_writer_new();
    for (int i = 0; i < st_count(f); i++) {
        const st_entry *e = st_at(f, i);
        if (drop && !strcmp(e->name, drop)) continue;
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", e->name);
        int64_t shape[CM_MAX_DIMS];
        memcpy(shape, e->shape, sizeof shape);
        if (reshape && !strcmp(e->name, reshape)) shape[0] -= 1;
        st_writer_add_copy(w, name, e->dtype, e->ndim, shape, e->data);
    }
    if (st_writer_save(w, dst, err, sizeof err)) cm_die("test_flux_weights", "%s", err);
    st_writer_free(w);
    st_close(f);
}

static int64_t count_differing(const cm_params *a, const cm_params *b) {
    int64_t bad = 0;
    for (int i = 0; i < a->n; i++) {
        cm_tensor *t = params_find(b, a->items[i].name);
        if (!t || tensor_numel(t) != tensor_numel(a->items[i].t)) {
            bad++;
            continue;
        }
        const float *x = tensor_data(a->items[i].t), *y = tensor_data(t);
        for (int64_t j = 0; j < tensor_numel(t); j++) bad += x[j] != y[j];
    }
    return bad;
}

int main(void) {
    char err[512];
    // --- full sizes, nothing allocated ---
    flux_config dev = flux_config_dev();
    TEST_CHECK(flux_param_count(&dev) == 11901408320LL, "flux-dev %lld, want 11,901,408,320", (long long)flux_param_count(&dev));
    ip_attn_config ic = ip_attn_config_ic();
    TEST_CHECK(ip_attn_param_count(&ic) == 1434816768LL, "IP modules %lld, want 1,434,816,768", (long long)ip_attn_param_count(&ic));
    cm_params meta;
    params_init_meta(&meta, CM_BF16);
    TEST_CHECK(flux_describe(&dev, &meta, err, sizeof err) == 0, "describe: %s", err);
    TEST_CHECK(params_count(&meta, false) == 11901408320LL, "described %lld", (long long)params_count(&meta, false));
    // 8 embedder Linears x 2 + 19 x (14 Linears x 2 + 4 norms) + 38 x (6 x 2 + 2) + norm_out, proj_out
    TEST_CHECK(meta.n == 16 + 19 * 32 + 38 * 14 + 4, "%d keys", meta.n);
    cm_tensor *t = params_find(&meta, "single_transformer_blocks.37.proj_out.weight");
    TEST_CHECK(t && t->shape[0] == 3072 && t->shape[1] == 15360, "single proj_out shape");
    t = params_find(&meta, "transformer_blocks.18.norm1.linear.weight");
    TEST_CHECK(t && t->shape[0] == 18432 && t->shape[1] == 3072, "norm1.linear shape");
    params_free(&meta);
    ip_attn ipm;
    params_init_meta(&meta, CM_BF16);
    ip_attn_init(&ipm, &ic, &meta, "ip_adapter");
    TEST_CHECK(meta.n == 57 * 6 && params_count(&meta, false) == 1434816768LL, "IP keys %d", meta.n);
    t = params_find(&meta, "ip_adapter.56.to_v_ip.weight");
    TEST_CHECK(t && t->shape[0] == 3072 && t->shape[1] == 4096, "ip_adapter.56.to_v_ip.weight [3072, 4096]");
    TEST_CHECK(params_find(&meta, "ip_adapter.0.norm_ip_q.scale") && params_find(&meta, "ip_adapter.3.norm_ip_k.scale"),
               "IP norm keys are '.scale'");
    ip_attn_free(&ipm);
    params_free(&meta);

    // --- the name mapping ---
    char b[256];
    int64_t r0;
    int swap;
    TEST_CHECK(flux_bfl_name(&dev, "single_transformer_blocks.7.proj_mlp.bias", b, sizeof b, &r0, &swap) == 0 &&
               !strcmp(b, "single_blocks.7.linear1.bias") && r0 == 3 * 3072 && !swap, "proj_mlp -> %s @%lld", b, (long long)r0);
    TEST_CHECK(flux_bfl_name(&dev, "transformer_blocks.3.attn.add_v_proj.weight", b, sizeof b, &r0, &swap) == 0 &&
               !strcmp(b, "double_blocks.3.txt_attn.qkv.weight") && r0 == 2 * 3072, "add_v_proj -> %s", b);
    TEST_CHECK(flux_bfl_name(&dev, "transformer_blocks.0.attn.norm_added_k.weight", b, sizeof b, &r0, &swap) == 0 &&
               !strcmp(b, "double_blocks.0.txt_attn.norm.key_norm.scale"), "norm_added_k -> %s", b);
    TEST_CHECK(flux_bfl_name(&dev, "norm_out.linear.weight", b, sizeof b, &r0, &swap) == 0 &&
               !strcmp(b, "final_layer.adaLN_modulation.1.weight") && swap == 1, "norm_out -> %s", b);
    TEST_CHECK(flux_bfl_name(&dev, "ip_adapter.0.to_k_ip.weight", b, sizeof b, &r0, &swap) == -1, "IP keys are not FLUX");

    // --- detection ---
    flux_config tiny = flux_config_tiny(), found;
    flux_layout lay = -1;
    TEST_CHECK(flux_config_from_weights(DIR "flux_tiny.safetensors", &found, &lay, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(lay == FLUX_LAYOUT_DIFFUSERS && same_config(&found, &tiny), "diffusers file: layout %d, %d+%d blocks %dx%d",
               lay, found.num_layers, found.num_single_layers, found.heads, found.head_dim);
    TEST_CHECK(flux_config_from_weights(DIR "flux_tiny_bfl.safetensors", &found, &lay, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(lay == FLUX_LAYOUT_BFL && same_config(&found, &tiny), "BFL file: layout %d", lay);
    TEST_CHECK(flux_config_from_weights(DIR "ip_tiny.safetensors", &found, &lay, err, sizeof err) == -1 &&
               strstr(err, "not a FLUX transformer") && strstr(err, "x_embedder.weight"), "IP file as FLUX: %s", err);

    // --- loading both layouts to the same numbers ---
    cm_params pa, pb;
    flux_model ma, mb;
    params_init_registry(&pa, CM_DEV_CPU, CM_F32, false);
    params_init_registry(&pb, CM_DEV_CPU, CM_F32, false);
    flux_init(&ma, &tiny, &pa, err, sizeof err);
    flux_init(&mb, &tiny, &pb, err, sizeof err);
    TEST_CHECK(flux_load(&ma, &pa, DIR "flux_tiny.safetensors", err, sizeof err) == 0, "diffusers: %s", err);
    TEST_CHECK(flux_load(&mb, &pb, DIR "flux_tiny_bfl.safetensors", err, sizeof err) == 0, "BFL: %s", err);
    int64_t bad = count_differing(&pa, &pb);
    TEST_CHECK(bad == 0, "BFL-loaded weights differ from diffusers in %lld values", (long long)bad);

    char tmp[] = "/tmp/cameo_flux_XXXXXX";
    TEST_CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char path[600];
    snprintf(path, sizeof path, "%s/prefixed.safetensors", tmp);
    rewrite(DIR "flux_tiny_bfl.safetensors", path, NULL, "model.diffusion_model.", NULL);
    params_randomize(&pb, 7);
    TEST_CHECK(flux_load(&mb, &pb, path, err, sizeof err) == 0, "prefixed BFL: %s", err);
    TEST_CHECK(count_differing(&pa, &pb) == 0, "prefixed BFL weights differ");
    unlink(path);

    snprintf(path, sizeof path, "%s/missing.safetensors", tmp);
    rewrite(DIR "flux_tiny_bfl.safetensors", path, "single_blocks.1.linear1.weight", NULL, NULL);
    TEST_CHECK(flux_load(&mb, &pb, path, err, sizeof err) == -1 && strstr(err, "single_blocks.1.linear1.weight"),
               "missing fused tensor: %s", err);
    unlink(path);
    snprintf(path, sizeof path, "%s/short.safetensors", tmp);
    rewrite(DIR "flux_tiny_bfl.safetensors", path, NULL, NULL, "double_blocks.0.img_attn.qkv.weight");
    TEST_CHECK(flux_load(&mb, &pb, path, err, sizeof err) == -1 && strstr(err, "double_blocks.0.img_attn.qkv.weight") &&
               strstr(err, "[95, 32]") && strstr(err, "[96, 32]"), "short qkv: %s", err);
    unlink(path);
    snprintf(path, sizeof path, "%s/short_dif.safetensors", tmp);
    rewrite(DIR "flux_tiny.safetensors", path, NULL, NULL, "transformer_blocks.1.attn.to_k.weight");
    TEST_CHECK(flux_load(&ma, &pa, path, err, sizeof err) == -1 && strstr(err, "transformer_blocks.1.attn.to_k.weight"),
               "misshapen diffusers tensor: %s", err);
    unlink(path);

    // diffusers' sharded layout: two shards + "diffusion_pytorch_model.safetensors.index.json"
    {
        st_file *f = st_open(DIR "flux_tiny.safetensors", err, sizeof err);
        st_writer *w1 = st_writer_new(), *w2 = st_writer_new();
        char idx[600], s1[600], s2[600];
        snprintf(idx, sizeof idx, "%s/diffusion_pytorch_model.safetensors.index.json", tmp);
        snprintf(s1, sizeof s1, "%s/diffusion_pytorch_model-00001-of-00002.safetensors", tmp);
        snprintf(s2, sizeof s2, "%s/diffusion_pytorch_model-00002-of-00002.safetensors", tmp);
        FILE *js = fopen(idx, "w");
        fprintf(js, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
        for (int i = 0; i < st_count(f); i++) {
            const st_entry *e = st_at(f, i);
            bool second = strncmp(e->name, "single_", 7) == 0;
            st_writer_add(second ? w2 : w1, e->name, e->dtype, e->ndim, e->shape, e->data);
            fprintf(js, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002.safetensors\"", i ? ", " : "", e->name,
                    second ? 2 : 1);
        }
        fprintf(js, "}}\n");
        fclose(js);
        TEST_CHECK(st_writer_save(w1, s1, err, sizeof err) == 0 && st_writer_save(w2, s2, err, sizeof err) == 0, "%s", err);
        st_writer_free(w1);
        st_writer_free(w2);
        st_close(f);
        TEST_CHECK(flux_config_from_weights(tmp, &found, &lay, err, sizeof err) == 0 && same_config(&found, &tiny) &&
                   lay == FLUX_LAYOUT_DIFFUSERS, "sharded folder: %s", err);
        params_randomize(&pb, 9);
        TEST_CHECK(flux_load(&mb, &pb, tmp, err, sizeof err) == 0, "sharded load: %s", err);
        TEST_CHECK(count_differing(&pa, &pb) == 0, "sharded weights differ");
        unlink(idx);
        unlink(s1);
        unlink(s2);
    }
    rmdir(tmp);

    // a model built for another size refuses the file, naming both
    flux_config other = tiny;
    other.num_single_layers = 3;
    cm_params pc;
    flux_model mc;
    params_init_registry(&pc, CM_DEV_CPU, CM_F32, false);
    flux_init(&mc, &other, &pc, err, sizeof err);
    TEST_CHECK(flux_load(&mc, &pc, DIR "flux_tiny.safetensors", err, sizeof err) == -1 && strstr(err, "2+2 blocks") &&
               strstr(err, "2+3"), "size mismatch: %s", err);
    flux_free(&mc);
    params_free(&pc);

    // bad configs
    flux_config bad_axes = tiny;
    bad_axes.axes_dim[0] = 6;
    TEST_CHECK(flux_config_check(&bad_axes, err, sizeof err) == -1 && strstr(err, "axes_dim"), "axes: %s", err);

    flux_free(&ma);
    flux_free(&mb);
    params_free(&pa);
    params_free(&pb);
    return test_summary("test_flux_weights");
}

// test_ic_params.c — the InstantCharacter adapter at full size, counted without allocating (a meta
// registry): 2,794,932,864 parameters = image_proj 1,360,116,096 + ip_adapter 1,434,816,768
// (spec §0, §3.3), with the per-part sums of spec §3.2; and at tiny size, the meta description
// equals what a real (allocating) init registers, name for name and shape for shape.
#include <string.h>
#include "models/ic_adapter.h"
#include "models/safetensors.h"
#include "testutil.h"
#if __has_include("models/ip_attn.h")
#include "models/ip_attn.h"
#define HAVE_IP_ATTN 1
#endif

static int64_t count_matching(const cm_params *ps, const char *prefix, const char *contains) {
    int64_t n = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < ps->n; i++)
        if (!strncmp(ps->items[i].name, prefix, pl) && (!contains || strstr(ps->items[i].name, contains)))
            n += tensor_numel(ps->items[i].t);
    return n;
}

int main(void) {
    char err[512];
    cm_params meta;
    params_init_meta(&meta, CM_BF16);
    TEST_CHECK(!ic_adapter_describe(&IC_ADAPTER_FULL, &meta, err, sizeof err), "describe: %s", err);
    TEST_CHECK(meta.meta, "the description must use a meta registry (nothing allocated)");
    int64_t total = params_count(&meta, false);
    int64_t proj = ic_params_count_prefix(&meta, "image_proj."), ip = ic_params_count_prefix(&meta, "ip_adapter.");
    printf("full: %lld = image_proj %lld + ip_adapter %lld, %d tensors\n", (long long)total, (long long)proj,
           (long long)ip, meta.n);
    TEST_CHECK(total == 2794932864LL, "total %lld", (long long)total);
    TEST_CHECK(proj == 1360116096LL, "image_proj %lld", (long long)proj);
    TEST_CHECK(ip == 1434816768LL, "ip_adapter %lld", (long long)ip);
    // spec §3.2 parts
    int64_t blocks = count_matching(&meta, "image_proj.cross_layer_blocks.", NULL) +
                     count_matching(&meta, "image_proj.cross_scale_blocks.", NULL);
    int64_t mlps = count_matching(&meta, "image_proj.proj.", NULL) + count_matching(&meta, "image_proj.proj_cross_layer.", NULL) +
                   count_matching(&meta, "image_proj.proj_cross_scale.", NULL);
    int64_t res = count_matching(&meta, "image_proj.resampler.", NULL);
    TEST_CHECK(blocks == 1156420608LL, "8 transformer blocks %lld", (long long)blocks);
    TEST_CHECK(count_matching(&meta, "image_proj.cross_layer_blocks.0.", NULL) == 144552576LL, "one block");
    TEST_CHECK(mlps == 86728320LL, "3 MLPs %lld", (long long)mlps);
    TEST_CHECK(res == 116967168LL, "resampler %lld", (long long)res);
    TEST_CHECK(count_matching(&meta, "ip_adapter.0.", NULL) == 25172224LL, "one IP module");
    TEST_CHECK(meta.dtype == CM_BF16, "described as the published bf16");
#ifdef HAVE_IP_ATTN
    ip_attn_config ic = ip_attn_config_ic();
    TEST_CHECK(ip_attn_param_count(&ic) == ip, "ip_attn_param_count %lld vs %lld", (long long)ip_attn_param_count(&ic),
               (long long)ip);
#endif
    params_free(&meta);

    // tiny: description == real init
    cm_params tm, real;
    params_init_meta(&tm, CM_BF16);
    TEST_CHECK(!ic_adapter_describe(&IC_ADAPTER_TINY, &tm, err, sizeof err), "describe tiny: %s", err);
    params_init_registry(&real, CM_DEV_CPU, CM_F32, true);
    ic_adapter a;
    TEST_CHECK(!ic_adapter_init(&a, &IC_ADAPTER_TINY, &real, err, sizeof err), "init tiny: %s", err);
    TEST_CHECK(tm.n == real.n, "%d described vs %d registered", tm.n, real.n);
    for (int i = 0; i < tm.n && i < real.n; i++) {
        TEST_CHECK(!strcmp(tm.items[i].name, real.items[i].name), "key %d: %s vs %s", i, tm.items[i].name, real.items[i].name);
        TEST_CHECK(tensor_same_shape(tm.items[i].t, real.items[i].t), "shape of %s", tm.items[i].name);
    }
    printf("tiny: %lld parameters (image_proj %lld, ip_adapter %lld), %d tensors\n", (long long)params_count(&real, false),
           (long long)ic_params_count_prefix(&real, "image_proj."), (long long)ic_params_count_prefix(&real, "ip_adapter."), real.n);
    TEST_CHECK(ic_params_count_prefix(&real, "image_proj.") == 118008, "tiny projector");
    TEST_CHECK(params_count(&real, true) == params_count(&real, false), "every adapter weight is trainable");
    ic_adapter_free(&a);
    params_free(&real);
    params_free(&tm);

    // bad configs are refused with a message naming the field
    ic_adapter_config bad = IC_ADAPTER_TINY;
    bad.proj.heads = 5;  // 5 x 8 != 32
    TEST_CHECK(ic_adapter_config_check(&bad, err, sizeof err) == -1 && strstr(err, "head_dim"), "bad heads: %s", err);
    bad = IC_ADAPTER_TINY;
    bad.proj.timestep_in = 15;
    TEST_CHECK(ic_adapter_config_check(&bad, err, sizeof err) == -1 && strstr(err, "timestep_in"), "odd timestep_in: %s", err);
    // a weight stored in a dtype cameo cannot hold (FP8 here): refused naming the file's dtype
    {
        char e2[512];
        st_file *f = st_open("tests/fixtures/safetensors/unsupported.safetensors", e2, sizeof e2);
        const st_entry *q = f ? st_find(f, "fp8") : NULL;
        TEST_CHECK(q != NULL, "the fixture's fp8 entry: %s", e2);
        if (q) {
            cm_params ps;
            params_init_registry(&ps, CM_DEV_CPU, CM_F32, false);
            params_new(&ps, NULL, "fp8", q->ndim, q->shape, CM_INIT_ZEROS);
            int n_extra;
            TEST_CHECK(params_load(&ps, "tests/fixtures/safetensors/unsupported.safetensors", NULL, false, &n_extra, e2, sizeof e2) == -1 &&
                           strstr(e2, "dtype F8_E4M3, expected F32, BF16, F16 or F64"), "an FP8 weight refused by name: %s", e2);
            params_free(&ps);
        }
        st_close(f);
    }
    return test_summary("test_ic_params");
}

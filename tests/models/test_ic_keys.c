// test_ic_keys.c — the adapter's keys and shapes are exactly spec §3's tables (written out here
// independently of models/ic_*.c), nothing more and nothing less; size detection from weights
// finds the tiny fixture and refuses a file that is not an adapter, naming the missing key.
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "models/ic_adapter.h"
#include "train/cli.h"
#include "testutil.h"

// runs `cameo inspect ARGS` in-process with stdout captured into out; returns its exit code
static int run_inspect(int argc, char **argv, char *out, size_t n) {
    fflush(stdout);
    FILE *tmp = tmpfile();
    int saved = dup(1);
    dup2(fileno(tmp), 1);
    int rc = inspect_cli(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(tmp);
    size_t got = fread(out, 1, n - 1, tmp);
    out[got] = 0;
    fclose(tmp);
    return rc;
}

typedef struct { char name[NAME_MAX_LEN]; int ndim; int64_t s0, s1, s2; } want;
static want W[1024];
static int nw;

static void add(int ndim, int64_t s0, int64_t s1, int64_t s2, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(int ndim, int64_t s0, int64_t s1, int64_t s2, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(W[nw].name, NAME_MAX_LEN, fmt, ap);
    va_end(ap);
    W[nw].ndim = ndim; W[nw].s0 = s0; W[nw].s1 = s1; W[nw].s2 = s2;
    nw++;
}

// spec §3.1 and §3.2, full size
static void spec_keys(void) {
    const char *P[2] = {"cross_layer_blocks", "cross_scale_blocks"};
    for (int p = 0; p < 2; p++)
        for (int j = 0; j < 4; j++) {
            for (int k = 1; k <= 3; k++) {
                add(1, 2688, 0, 0, "image_proj.%s.%d.norm%d.weight", P[p], j, k);
                add(1, 2688, 0, 0, "image_proj.%s.%d.norm%d.bias", P[p], j, k);
            }
            for (int a = 1; a <= 2; a++) {
                add(2, 2688, 2688, 0, "image_proj.%s.%d.attn%d.to_q.weight", P[p], j, a);
                add(2, 2688, 2688, 0, "image_proj.%s.%d.attn%d.to_k.weight", P[p], j, a);
                add(2, 2688, 2688, 0, "image_proj.%s.%d.attn%d.to_v.weight", P[p], j, a);
                add(2, 2688, 2688, 0, "image_proj.%s.%d.attn%d.to_out.0.weight", P[p], j, a);
                add(1, 2688, 0, 0, "image_proj.%s.%d.attn%d.to_out.0.bias", P[p], j, a);
            }
            add(2, 21504, 2688, 0, "image_proj.%s.%d.ff.net.0.proj.weight", P[p], j);
            add(1, 21504, 0, 0, "image_proj.%s.%d.ff.net.0.proj.bias", P[p], j);
            add(2, 2688, 10752, 0, "image_proj.%s.%d.ff.net.2.weight", P[p], j);
            add(1, 2688, 0, 0, "image_proj.%s.%d.ff.net.2.bias", P[p], j);
        }
    const char *M[3] = {"proj", "proj_cross_layer", "proj_cross_scale"};
    for (int m = 0; m < 3; m++) {
        add(2, 5376, 2688, 0, "image_proj.%s.fc1.weight", M[m]);
        add(1, 5376, 0, 0, "image_proj.%s.fc1.bias", M[m]);
        add(2, 2688, 5376, 0, "image_proj.%s.fc2.weight", M[m]);
        add(1, 2688, 0, 0, "image_proj.%s.fc2.bias", M[m]);
    }
    add(3, 1, 1024, 1280, "image_proj.resampler.latents");
    add(2, 1280, 2688, 0, "image_proj.resampler.proj_in.weight");
    add(1, 1280, 0, 0, "image_proj.resampler.proj_in.bias");
    add(2, 4096, 1280, 0, "image_proj.resampler.proj_out.weight");
    add(1, 4096, 0, 0, "image_proj.resampler.proj_out.bias");
    add(1, 4096, 0, 0, "image_proj.resampler.norm_out.weight");
    add(1, 4096, 0, 0, "image_proj.resampler.norm_out.bias");
    for (int j = 0; j < 4; j++) {
        add(1, 1280, 0, 0, "image_proj.resampler.layers.%d.0.norm1.weight", j);
        add(1, 1280, 0, 0, "image_proj.resampler.layers.%d.0.norm1.bias", j);
        add(1, 1280, 0, 0, "image_proj.resampler.layers.%d.0.norm2.weight", j);
        add(1, 1280, 0, 0, "image_proj.resampler.layers.%d.0.norm2.bias", j);
        add(2, 1280, 1280, 0, "image_proj.resampler.layers.%d.0.to_q.weight", j);
        add(2, 2560, 1280, 0, "image_proj.resampler.layers.%d.0.to_kv.weight", j);
        add(2, 1280, 1280, 0, "image_proj.resampler.layers.%d.0.to_out.weight", j);
        add(1, 1280, 0, 0, "image_proj.resampler.layers.%d.1.0.weight", j);
        add(1, 1280, 0, 0, "image_proj.resampler.layers.%d.1.0.bias", j);
        add(2, 5120, 1280, 0, "image_proj.resampler.layers.%d.1.1.weight", j);
        add(2, 1280, 5120, 0, "image_proj.resampler.layers.%d.1.3.weight", j);
        add(2, 5120, 1280, 0, "image_proj.resampler.layers.%d.2.1.weight", j);
        add(1, 5120, 0, 0, "image_proj.resampler.layers.%d.2.1.bias", j);
    }
    add(2, 1280, 320, 0, "image_proj.resampler.time_embedding.linear_1.weight");
    add(1, 1280, 0, 0, "image_proj.resampler.time_embedding.linear_1.bias");
    add(2, 1280, 1280, 0, "image_proj.resampler.time_embedding.linear_2.weight");
    add(1, 1280, 0, 0, "image_proj.resampler.time_embedding.linear_2.bias");
    for (int i = 0; i < 57; i++) {
        add(1, 128, 0, 0, "ip_adapter.%d.norm_ip_q.scale", i);
        add(2, 3072, 4096, 0, "ip_adapter.%d.to_k_ip.weight", i);
        add(1, 3072, 0, 0, "ip_adapter.%d.to_k_ip.bias", i);
        add(1, 128, 0, 0, "ip_adapter.%d.norm_ip_k.scale", i);
        add(2, 3072, 4096, 0, "ip_adapter.%d.to_v_ip.weight", i);
        add(1, 3072, 0, 0, "ip_adapter.%d.to_v_ip.bias", i);
    }
}

int main(void) {
    char err[1024];
    spec_keys();
    cm_params meta;
    params_init_meta(&meta, CM_BF16);
    TEST_CHECK(!ic_adapter_describe(&IC_ADAPTER_FULL, &meta, err, sizeof err), "describe: %s", err);
    TEST_CHECK(meta.n == nw && nw == 577, "%d keys described, %d in the spec", meta.n, nw);
    int64_t spec_total = 0;
    for (int i = 0; i < nw; i++) {
        const want *w = &W[i];
        spec_total += w->s0 * (w->ndim > 1 ? w->s1 : 1) * (w->ndim > 2 ? w->s2 : 1);
        cm_tensor *t = params_find(&meta, w->name);
        TEST_CHECK(t, "spec key %s missing", w->name);
        if (!t) continue;
        int64_t s[3] = {w->s0, w->s1, w->s2};
        bool ok = t->ndim == w->ndim;
        for (int d = 0; ok && d < w->ndim; d++) ok = t->shape[d] == s[d];
        char buf[96];
        TEST_CHECK(ok, "%s: shape %s", w->name, tensor_shape_str(t, buf, sizeof buf));
    }
    for (int i = 0; i < meta.n; i++) {  // nothing outside the spec
        bool found = false;
        for (int j = 0; j < nw && !found; j++) found = !strcmp(W[j].name, meta.items[i].name);
        TEST_CHECK(found, "key %s is not in spec §3", meta.items[i].name);
    }
    TEST_CHECK(spec_total == 2794932864LL, "spec tables sum to %lld", (long long)spec_total);
    params_free(&meta);

    // size detection: the tiny fixture, and a file that is no adapter
    ic_adapter_config c;
    TEST_CHECK(!ic_adapter_config_from_weights("tests/fixtures/ic/weights.safetensors", &c, err, sizeof err), "%s", err);
    TEST_CHECK(ic_projector_config_eq(&c.proj, &IC_PROJECTOR_TINY) && c.n_ip == 0, "tiny fixture detected");
    TEST_CHECK(ic_adapter_config_from_weights("tests/fixtures/ic/io.safetensors", &c, err, sizeof err) == -1 &&
               strstr(err, "image_proj.cross_layer_blocks.0.norm1.weight"), "not an adapter: %s", err);
    TEST_CHECK(ic_adapter_config_from_weights("tests/fixtures/ic/no_such_file.safetensors", &c, err, sizeof err) == -1,
               "missing file");
    printf("missing file: %s\n", err);

    // cameo inspect
    static char out[1 << 20];
    int rc = run_inspect(3, (char *[]){"--arch", "instantcharacter", "--quiet"}, out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "2,794,932,864") && strstr(out, "image_proj: 1,360,116,096") &&
               strstr(out, "ip_adapter: 1,434,816,768"), "inspect --arch instantcharacter: rc %d\n%s", rc, out);
    rc = run_inspect(2, (char *[]){"--arch", "instantcharacter"}, out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "image_proj.resampler.layers.3.2.1.weight") && strstr(out, "[5120, 1280]") &&
               strstr(out, "ip_adapter.56.to_v_ip.bias"), "inspect lists keys and shapes");
    rc = run_inspect(2, (char *[]){"--arch", "flux-dev"}, out, sizeof out);
    TEST_CHECK(rc == 0 && (strstr(out, "11,901,408,320") || strstr(out, "not yet")), "inspect flux-dev: %s", out);
    rc = run_inspect(1, (char *[]){"tests/fixtures/ic/weights.safetensors"}, out, sizeof out);
    TEST_CHECK(rc == 0 && strstr(out, "InstantCharacter adapter") && strstr(out, "118,008") &&
               strstr(out, "image_proj.resampler.latents") && strstr(out, "[1, 8, 24]"), "inspect file:\n%s", out);
    rc = run_inspect(2, (char *[]){"--arch", "no-such-model"}, out, sizeof out);
    TEST_CHECK(rc == 2, "unknown arch rc %d", rc);
    rc = run_inspect(1, (char *[]){"tests/fixtures/ic/no_such_file.safetensors"}, out, sizeof out);
    TEST_CHECK(rc == 1, "missing file rc %d", rc);
    rc = run_inspect(0, NULL, out, sizeof out);
    TEST_CHECK(rc == 2, "no argument rc %d", rc);
    return test_summary("test_ic_keys");
}

// test_optim.c — train/optim (AdamW against a double reference, clipping, NaN/Inf skipping,
// bf16 params with separate masters, shards, ZeRO-1 sharding and its files, state save/load bit-exact) and train/schedule.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "autograd/autograd.h"
#include "models/safetensors.h"
#include "train/models.h"
#include "train/optim.h"
#include "train/schedule.h"

static void make_regs(cm_params *a, cm_params *b, cm_dtype dt) {
    params_init_registry(a, CM_DEV_CPU, dt, true);
    params_new(a, "image_proj", "w", SHAPE(3, 4), CM_INIT_NORMAL);
    params_new(a, "image_proj", "b", SHAPE(4), CM_INIT_NORMAL);
    a->trainable = false;
    params_new(a, "frozen", "x", SHAPE(2), CM_INIT_NORMAL);  // not trainable: never touched
    a->items[2].trainable = false;
    params_randomize(a, 1);
    params_init_registry(b, CM_DEV_CPU, dt, true);
    params_new(b, "ip_adapter.0", "to_k_ip.weight", SHAPE(5, 2), CM_INIT_NORMAL);
    params_randomize(b, 2);
}

// deterministic gradients for step k: f32 tensors shaped like the params
static void set_grads(optim *o, int k, double scale, cm_dtype gdt) {
    for (int i = 0; i < o->n_all; i++) {
        cm_tensor *p = o->all[i]->t;
        int64_t n = tensor_numel(p);
        float *g = malloc((size_t)n * sizeof *g);
        for (int64_t j = 0; j < n; j++) g[j] = (float)(scale * sin(0.7 * (double)(j + 1) * (i + 1) + k));
        cm_tensor *gt = tensor_from_host(CM_F32, p->ndim, p->shape, g, CM_DEV_CPU);
        if (gdt == CM_BF16) {
            cm_tensor *gb = tensor_empty(CM_BF16, p->ndim, p->shape, CM_DEV_CPU);
            uint16_t *d = tensor_data(gb);
            for (int64_t j = 0; j < n; j++) d[j] = f32_to_bf16(g[j]);
            tensor_release(gt);
            gt = gb;
        }
        tensor_release(p->grad);
        p->grad = gt;
        free(g);
    }
}

static int same_bits(const cm_params *a, const cm_params *b) {
    for (int i = 0; i < a->n; i++)
        if (memcmp(tensor_data(a->items[i].t), tensor_data(b->items[i].t), tensor_nbytes(a->items[i].t))) return 0;
    return 1;
}

static void test_reference(void) {
    cm_params a, b;
    make_regs(&a, &b, CM_F32);
    cm_params *regs[2] = {&a, &b};
    optim_config oc = optim_config_default();
    oc.lr = 1e-2, oc.weight_decay = 0.1, oc.grad_clip = 1.5;
    optim o;
    char err[512];
    TEST_CHECK(optim_init(&o, regs, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(o.n_all == 3 && !strcmp(optim_param_at(&o, 2)->name, "ip_adapter.0.to_k_ip.weight"), "flattened list");
    TEST_CHECK(o.slot[0].master_is_param && o.slot[0].master->storage == a.items[0].t->storage, "f32 master is the param");
    float frozen0 = ((float *)tensor_data(a.items[2].t))[0];
    // double reference
    double P[3][16], M[3][16] = {{0}}, V[3][16] = {{0}};
    int64_t N[3];
    for (int i = 0; i < 3; i++) {
        N[i] = tensor_numel(o.all[i]->t);
        for (int64_t j = 0; j < N[i]; j++) P[i][j] = ((float *)tensor_data(o.all[i]->t))[j];
    }
    for (int k = 0; k < 5; k++) {
        double scale = k == 2 ? 10.0 : 0.3;  // step 2 is clipped
        set_grads(&o, k, scale, CM_F32);
        double ss = 0;
        for (int i = 0; i < 3; i++)
            for (int64_t j = 0; j < N[i]; j++) ss += pow(((float *)tensor_data(o.all[i]->t->grad))[j], 2);
        double norm = sqrt(ss), gs = fmin(1.0, oc.grad_clip / (norm + 1e-6));
        optim_step_info info;
        TEST_CHECK(optim_step(&o, oc.lr, &info) == 0, "step %d applied", k);
        TEST_NEAR(info.grad_norm, norm, 1e-5, 1e-5, "grad norm");
        TEST_NEAR(info.gscale, gs, 1e-9, 1e-6, "gscale");
        TEST_CHECK((k == 2) == (info.gscale < 1), "clipping only on the large step");
        double t = k + 1, bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
        for (int i = 0; i < 3; i++)
            for (int64_t j = 0; j < N[i]; j++) {
                double g = (float)(scale * sin(0.7 * (double)(j + 1) * (i + 1) + k)) * gs;
                M[i][j] = 0.9 * M[i][j] + 0.1 * g;
                V[i][j] = 0.999 * V[i][j] + 0.001 * g * g;
                P[i][j] *= 1 - oc.lr * oc.weight_decay;
                P[i][j] -= oc.lr * (M[i][j] / bc1) / (sqrt(V[i][j] / bc2) + oc.eps);
            }
        TEST_CHECK(a.items[0].t->grad == NULL, "gradients zeroed after the step");
    }
    double maxd = 0;
    for (int i = 0; i < 3; i++)
        for (int64_t j = 0; j < N[i]; j++) maxd = test_max(maxd, fabs(P[i][j] - ((float *)tensor_data(o.all[i]->t))[j]));
    TEST_CHECK(maxd < 2e-6, "AdamW vs double reference: max diff %g", maxd);
    TEST_CHECK(((float *)tensor_data(a.items[2].t))[0] == frozen0, "frozen param untouched");
    TEST_CHECK(o.step == 5, "step count");

    // NaN / Inf: skipped, counted, nothing moves
    float before[12];
    memcpy(before, tensor_data(a.items[0].t), sizeof before);
    for (int k = 0; k < 2; k++) {
        set_grads(&o, 9, 1.0, CM_F32);
        ((float *)tensor_data(o.all[2]->t->grad))[3] = k ? INFINITY : NAN;
        optim_step_info info;
        TEST_CHECK(optim_step(&o, oc.lr, &info) == 1 && info.skipped, "non-finite step skipped");
        TEST_CHECK(!isfinite(info.grad_norm), "norm reported non-finite");
    }
    TEST_CHECK(o.skipped == 2 && o.skipped_in_row == 2 && o.step == 5, "skips counted (%lld, %lld)", (long long)o.skipped,
               (long long)o.skipped_in_row);
    TEST_CHECK(!memcmp(before, tensor_data(a.items[0].t), sizeof before), "skipped step changed nothing");
    TEST_CHECK(a.items[0].t->grad == NULL, "skipped step zeroes the gradients");
    set_grads(&o, 10, 0.1, CM_F32);
    optim_step(&o, oc.lr, NULL);
    TEST_CHECK(o.skipped_in_row == 0 && o.skipped == 2, "a good step resets the run of skips");
    for (int i = 0; i < 3; i++) optim_grad_ready(&o, i);
    TEST_CHECK(o.ready[0] && o.ready[2], "grad_ready marks");
    optim_zero_grad(&o);
    TEST_CHECK(!o.ready[0], "zero_grad clears ready");
    optim_free(&o);
    params_free(&a);
    params_free(&b);
}

// two shards with the global norm from the summed local squares == one optimizer
static void test_shards(void) {
    cm_params a1, b1, a2, b2;
    make_regs(&a1, &b1, CM_F32);
    make_regs(&a2, &b2, CM_F32);
    cm_params *r1[2] = {&a1, &b1}, *r2[2] = {&a2, &b2};
    optim_config oc = optim_config_default();
    oc.grad_clip = 0.5;
    optim whole, s0, s1;
    char err[256];
    TEST_CHECK(optim_init(&whole, r1, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(optim_init(&s0, r2, 2, &oc, 0, 2, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(optim_init(&s1, r2, 2, &oc, 2, 4, err, sizeof err) == -1 && strstr(err, "shard"), "bad shard: %s", err);
    TEST_CHECK(optim_init(&s1, r2, 2, &oc, 2, 3, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 3; k++) {
        set_grads(&whole, k, 1.0, CM_F32);
        set_grads(&s0, k, 1.0, CM_F32);
        optim_step(&whole, 1e-3, NULL);
        double norm = sqrt(optim_local_sumsq(&s0) + optim_local_sumsq(&s1));  // "all-reduce"
        optim_apply(&s0, 1e-3, norm, NULL);
        optim_apply(&s1, 1e-3, norm, NULL);
    }
    TEST_CHECK(same_bits(&a1, &a2) && same_bits(&b1, &b2), "two shards == one optimizer");
    optim_free(&whole), optim_free(&s0), optim_free(&s1);
    params_free(&a1), params_free(&b1), params_free(&a2), params_free(&b2);
}

// optim_apply_scaled(grad_mult m) on gradients g is the step on m x g: the same norm, the same
// clipping, the same weights (to rounding: m is applied inside the update); m = 1 is optim_step's bits
static void test_grad_mult(void) {
    cm_params a1, b1, a2, b2, a3, b3;
    make_regs(&a1, &b1, CM_F32), make_regs(&a2, &b2, CM_F32), make_regs(&a3, &b3, CM_F32);
    cm_params *r1[2] = {&a1, &b1}, *r2[2] = {&a2, &b2}, *r3[2] = {&a3, &b3};
    optim_config oc = optim_config_default();
    oc.grad_clip = 2.0;  // between the steps' norms: clipped in some, not in others
    optim o1, o2, o3;
    char err[256];
    TEST_CHECK(optim_init(&o1, r1, 2, &oc, 0, -1, err, sizeof err) == 0 && optim_init(&o2, r2, 2, &oc, 0, -1, err, sizeof err) == 0 &&
               optim_init(&o3, r3, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    const double m[4] = {2.5, 0.3, 1.7, 1.0};
    int clipped = 0, unclipped = 0;
    for (int k = 0; k < 4; k++) {
        optim_step_info i1, i2;
        set_grads(&o1, k, 1.0, CM_F32), set_grads(&o2, k, m[k], CM_F32), set_grads(&o3, k, 1.0, CM_F32);
        optim_apply_scaled(&o1, 1e-2, sqrt(optim_local_sumsq(&o1)), m[k], &i1);
        optim_step(&o2, 1e-2, &i2);
        TEST_CHECK(fabs(i1.grad_norm - i2.grad_norm) <= 1e-6 * i2.grad_norm && fabs(i1.gscale - m[k] * i2.gscale) <= 1e-6 * i1.gscale,
                   "step %d: norm %g vs %g, scale %g vs %g x %g", k, i1.grad_norm, i2.grad_norm, i1.gscale, m[k], i2.gscale);
        clipped += i2.gscale < 1, unclipped += i2.gscale == 1;
        optim_apply_scaled(&o3, 1e-2, sqrt(optim_local_sumsq(&o3)), 1.0, NULL);
    }
    TEST_CHECK(clipped && unclipped, "steps with and without clipping (%d, %d)", clipped, unclipped);
    double worst = 0;
    for (int r = 0; r < 2; r++) {
        cm_params *p1 = r ? &b1 : &a1, *p2 = r ? &b2 : &a2;
        for (int i = 0; i < p1->n; i++)
            for (int64_t j = 0; j < tensor_numel(p1->items[i].t); j++)
                worst = fmax(worst, fabs(tensor_get(p1->items[i].t, j) - tensor_get(p2->items[i].t, j)));
    }
    TEST_CHECK(worst < 1e-6, "weights after 4 steps: m x g inside the update vs given: max |diff| %g", worst);
    TEST_CHECK(!same_bits(&a1, &a3), "the multiplier changes the result");
    optim_free(&o1), optim_free(&o2), optim_free(&o3);
    params_free(&a1), params_free(&b1), params_free(&a2), params_free(&b2), params_free(&a3), params_free(&b3);
}

// ZeRO-1 shards: the cut by element counts, the owners, the norm from per-parameter parts (the
// bits of one optimizer's), one file per shard loaded back by any sharding of the same params
static void test_sharded(void) {
    cm_params a1, b1, a2, b2, a3, b3;
    make_regs(&a1, &b1, CM_F32);
    make_regs(&a2, &b2, CM_F32);
    make_regs(&a3, &b3, CM_F32);
    cm_params *r1[2] = {&a1, &b1}, *r2[2] = {&a2, &b2}, *r3[2] = {&a3, &b3};
    optim_config oc = optim_config_default();
    oc.grad_clip = 0.5;  // clipping on: the norm's bits matter
    optim whole, s[2], t[5];
    char err[512];
    TEST_CHECK(optim_init(&whole, r1, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 2; k++) TEST_CHECK(optim_init_sharded(&s[k], r2, 2, &oc, k, 2, err, sizeof err) == 0, "%s", err);
    // elements 12, 4, 10: the cut nearest 13 is after the first parameter
    TEST_CHECK(s[0].begin == 0 && s[0].end == 1 && s[1].begin == 1 && s[1].end == 3, "2 shards: [%d, %d) [%d, %d)", s[0].begin,
               s[0].end, s[1].begin, s[1].end);
    TEST_CHECK(optim_owner(&s[1], 0) == 0 && optim_owner(&s[1], 1) == 1 && optim_owner(&s[0], 2) == 1 && optim_owner(&whole, 2) == 0,
               "owners");
    // more shards than parameters: every parameter has exactly one owner, whose range holds it
    int owned[3] = {0};
    for (int k = 0; k < 5; k++) {
        TEST_CHECK(optim_init_sharded(&t[k], r3, 2, &oc, k, 5, err, sizeof err) == 0, "%s", err);
        for (int i = t[k].begin; i < t[k].end; i++) {
            owned[i]++;
            TEST_CHECK(optim_owner(&t[k], i) == k, "owner of %d is %d", i, k);
        }
    }
    TEST_CHECK(owned[0] == 1 && owned[1] == 1 && owned[2] == 1, "5 shards cover each parameter once: %d %d %d", owned[0], owned[1], owned[2]);
    for (int k = 0; k < 5; k++) optim_free(&t[k]);
    TEST_CHECK(optim_init_sharded(&t[0], r3, 2, &oc, 2, 2, err, sizeof err) == -1 && strstr(err, "shard 2 of 2"), "%s", err);

    double parts[2][3];
    for (int k = 0; k < 3; k++) {
        set_grads(&whole, k, 1.0, CM_F32);
        set_grads(&s[0], k, 1.0, CM_F32);
        double n_whole = sqrt(optim_local_sumsq(&whole));
        optim_local_sumsq_parts(&s[0], parts[0]);
        optim_local_sumsq_parts(&s[1], parts[1]);
        for (int i = 0; i < 3; i++) {
            TEST_CHECK((parts[0][i] == 0) != (i < 1), "rank 0's part %d", i);
            parts[0][i] += parts[1][i];  // the all-reduce
        }
        double n_sh = sqrt(optim_sum_parts(&s[0], parts[0]));
        TEST_CHECK(n_sh == n_whole && n_whole > 0.5, "step %d: the sharded norm %.17g is the one-optimizer norm %.17g", k, n_sh, n_whole);
        optim_step(&whole, 1e-3, NULL);
        optim_apply(&s[0], 1e-3, n_sh, NULL);
        optim_apply(&s[1], 1e-3, n_sh, NULL);
    }
    TEST_CHECK(same_bits(&a1, &a2) && same_bits(&b1, &b2), "two ZeRO-1 shards == one optimizer");

    // one file per shard; a single optimizer (and a 3-way sharding) loads from both files
    char p0[96], p1[96], pb[96];
    snprintf(p0, sizeof p0, "/tmp/cameo-test-optim-%d-0.safetensors", (int)getpid());
    snprintf(p1, sizeof p1, "/tmp/cameo-test-optim-%d-1.safetensors", (int)getpid());
    snprintf(pb, sizeof pb, "/tmp/cameo-test-optim-%d-b.safetensors", (int)getpid());
    TEST_CHECK(optim_save(&s[0], p0, err, sizeof err) == 0 && optim_save(&s[1], p1, err, sizeof err) == 0, "%s", err);
    const char *both[2] = {p0, p1};
    optim back;
    TEST_CHECK(optim_init(&back, r3, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(optim_load_files(&back, both, 2, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(same_bits(&a1, &a3) && same_bits(&b1, &b3) && back.step == 3, "the shards' masters and counters in one optimizer");
    for (int k = 3; k < 5; k++) {
        set_grads(&whole, k, 1.0, CM_F32), optim_step(&whole, 1e-3, NULL);
        set_grads(&back, k, 1.0, CM_F32), optim_step(&back, 1e-3, NULL);
    }
    TEST_CHECK(same_bits(&a1, &a3) && same_bits(&b1, &b3), "one process resumes the shards' state bit-exactly");
    optim_free(&back);
    for (int k = 0; k < 3; k++) {
        TEST_CHECK(optim_init_sharded(&t[k], r3, 2, &oc, k, 3, err, sizeof err) == 0, "%s", err);
        TEST_CHECK(optim_load_files(&t[k], both, 2, err, sizeof err) == 0, "3-way shard %d: %s", k, err);
        optim_free(&t[k]);
    }
    // the files must be of one checkpoint, and hold every parameter
    s[1].step++;
    TEST_CHECK(optim_save(&s[1], pb, err, sizeof err) == 0, "%s", err);
    const char *mixed[2] = {p0, pb};
    TEST_CHECK(optim_init(&back, r3, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(optim_load_files(&back, mixed, 2, err, sizeof err) == -1 && strstr(err, "optim.step") &&
               strstr(err, "different checkpoints"), "%s", err);
    TEST_CHECK(optim_load_files(&back, both, 1, err, sizeof err) == -1 && strstr(err, "image_proj.b.m: missing"), "%s", err);
    optim_free(&back);
    remove(p0), remove(p1), remove(pb);
    optim_free(&whole), optim_free(&s[0]), optim_free(&s[1]);
    params_free(&a1), params_free(&b1), params_free(&a2), params_free(&b2), params_free(&a3), params_free(&b3);
}

// bf16 params: a separate f32 master; the param is the master rounded; bf16 gradients accepted
static void test_bf16(void) {
    cm_params a, b;
    make_regs(&a, &b, CM_BF16);
    cm_params *regs[2] = {&a, &b};
    optim o;
    char err[256];
    optim_config oc = optim_config_default();
    oc.lr = 1e-2;
    TEST_CHECK(optim_init(&o, regs, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(!o.slot[0].master_is_param && o.slot[0].master->dtype == CM_F32, "bf16 param has its own master");
    for (int k = 0; k < 4; k++) {
        set_grads(&o, k, 0.5, k % 2 ? CM_BF16 : CM_F32);
        optim_step_info info;
        TEST_CHECK(optim_step(&o, oc.lr, &info) == 0 && isfinite(info.grad_norm), "bf16 step");
    }
    int bad = 0;
    for (int s = 0; s < 3; s++) {
        const float *m = tensor_data(o.slot[s].master);
        const uint16_t *p = tensor_data(o.slot[s].param->t);
        for (int64_t j = 0; j < o.slot[s].n; j++) bad += p[j] != f32_to_bf16(m[j]);
    }
    TEST_CHECK(bad == 0, "bf16 param == round(master) (%d differ)", bad);
    optim_free(&o);
    params_free(&a);
    params_free(&b);
}

// bf16 params loaded from an f32 file (model.adapter_init on a bf16 model): the masters take the
// file's f32 values, not the params cast back up (the bits past bf16 were lost at the first step);
// a shard's masters only, the file's other tensors passed over; the params are the masters rounded
// and the weight average starts from the masters
static void test_bf16_init(void) {
    char path[96], err[512];
    snprintf(path, sizeof path, "/tmp/cameo-test-optim-init-%d.safetensors", (int)getpid());
    cm_params src, a, b;  // src: the f32 file's tensors, under the names of a and b
    params_init_registry(&src, CM_DEV_CPU, CM_F32, true);
    params_new(&src, "image_proj", "w", SHAPE(3, 4), CM_INIT_NORMAL);
    params_new(&src, "image_proj", "b", SHAPE(4), CM_INIT_NORMAL);
    params_new(&src, "frozen", "x", SHAPE(2), CM_INIT_NORMAL);
    params_new(&src, "ip_adapter.0", "to_k_ip.weight", SHAPE(5, 2), CM_INIT_NORMAL);
    params_randomize(&src, 7);
    TEST_CHECK(params_save(&src, path, false, CM_F32, err, sizeof err) == 0, "%s", err);
    make_regs(&a, &b, CM_BF16);
    TEST_CHECK(ic_adapter_file_into(&a, path, err, sizeof err) == 0 && ic_adapter_file_into(&b, path, err, sizeof err) == 0,
               "the f32 file into the bf16 params: %s", err);
    cm_params *regs[2] = {&a, &b};
    optim o;
    optim_config oc = optim_config_default();
    oc.ema_decay = 0.9;
    TEST_CHECK(optim_init(&o, regs, 2, &oc, 1, 3, err, sizeof err) == 0, "%s", err);  // the shard [1, 3): b and to_k_ip
    int lost = 0;
    for (int s = 0; s < 2; s++) {
        const float *m = tensor_data(o.slot[s].master), *f = tensor_data(params_find(&src, o.slot[s].param->name));
        for (int64_t j = 0; j < o.slot[s].n; j++) lost += m[j] != f[j];
    }
    TEST_CHECK(lost > 0, "the masters made from the bf16 params differ from the file (the case this test is about)");
    cm_params mp;
    optim_master_registry(&o, &mp);
    TEST_CHECK(mp.n == 2, "the shard's 2 separate masters listed (got %d)", mp.n);
    TEST_CHECK(ic_adapter_file_into(&mp, path, err, sizeof err) == 0, "the file into the masters: %s", err);
    params_free(&mp);
    optim_masters_loaded(&o);
    int bad_m = 0, bad_p = 0, bad_e = 0;
    for (int s = 0; s < 2; s++) {
        const float *m = tensor_data(o.slot[s].master), *e = tensor_data(o.slot[s].ema);
        const float *f = tensor_data(params_find(&src, o.slot[s].param->name));
        const uint16_t *p = tensor_data(o.slot[s].param->t);
        TEST_CHECK(m != f, "the master is its own memory");
        for (int64_t j = 0; j < o.slot[s].n; j++) bad_m += m[j] != f[j], bad_p += p[j] != f32_to_bf16(m[j]), bad_e += e[j] != m[j];
    }
    TEST_CHECK(bad_m == 0, "masters == the file's f32 values (%d differ)", bad_m);
    TEST_CHECK(bad_p == 0 && bad_e == 0, "params == round(master) (%d differ), average == master (%d differ)", bad_p, bad_e);
    optim_free(&o);
    params_free(&a);
    params_free(&b);
    params_free(&src);
    unlink(path);
}

// N steps, save, load into a fresh optimizer over copied params, M more steps: bit-identical
static void test_save_load(void) {
    cm_params a1, b1, a2, b2;
    make_regs(&a1, &b1, CM_F32);
    make_regs(&a2, &b2, CM_F32);
    cm_params *r1[2] = {&a1, &b1}, *r2[2] = {&a2, &b2};
    optim o1, o2;
    char err[512], path[64];
    snprintf(path, sizeof path, "/tmp/cameo-test-optim-%d.safetensors", (int)getpid());
    optim_init(&o1, r1, 2, NULL, 0, -1, err, sizeof err);
    for (int k = 0; k < 3; k++) set_grads(&o1, k, 1.0, CM_F32), optim_step(&o1, 1e-3, NULL);
    o1.skipped = 4;
    TEST_CHECK(optim_save(&o1, path, err, sizeof err) == 0, "%s", err);
    st_file *f = st_open(path, err, sizeof err);
    TEST_CHECK(f && st_find(f, "image_proj.w.m") && st_find(f, "image_proj.w.v") && st_find(f, "ip_adapter.0.to_k_ip.weight.master"),
               "state keys");
    st_close(f);
    // params 2 start elsewhere: the masters in the file must overwrite them
    TEST_CHECK(optim_init(&o2, r2, 2, NULL, 0, -1, err, sizeof err) == 0, "%s", err);
    ((float *)tensor_data(a2.items[0].t))[0] += 1;
    TEST_CHECK(optim_load(&o2, path, err, sizeof err) == 0, "%s", err);
    TEST_CHECK(o2.step == 3 && o2.skipped == 4, "counters restored");
    TEST_CHECK(same_bits(&a1, &a2) && same_bits(&b1, &b2), "masters restored into params");
    for (int k = 3; k < 6; k++) {
        set_grads(&o1, k, 1.0, CM_F32), optim_step(&o1, 1e-3, NULL);
        set_grads(&o2, k, 1.0, CM_F32), optim_step(&o2, 1e-3, NULL);
    }
    TEST_CHECK(same_bits(&a1, &a2) && same_bits(&b1, &b2), "resume is bit-exact");
    // a state for other params is refused by name
    cm_params c;
    params_init_registry(&c, CM_DEV_CPU, CM_F32, true);
    params_new(&c, "other", "w", SHAPE(2), CM_INIT_ZEROS);
    optim o3;
    cm_params *r3[1] = {&c};
    optim_init(&o3, r3, 1, NULL, 0, -1, err, sizeof err);
    TEST_CHECK(optim_load(&o3, path, err, sizeof err) == -1 && strstr(err, "other.w.m: missing"), "%s", err);
    optim_free(&o3);
    params_free(&c);
    optim_free(&o1), optim_free(&o2);
    params_free(&a1), params_free(&b1), params_free(&a2), params_free(&b2);
    remove(path);
}

static void test_schedule(void) {
    lr_schedule s = {.lr = 1.0, .warmup = 4, .total = 14, .kind = CFG_LR_CONSTANT, .min_ratio = 0.1};
    TEST_NEAR(schedule_lr(&s, 0), 0.25, 1e-12, 0, "warm-up step 0");
    TEST_NEAR(schedule_lr(&s, 3), 1.0, 1e-12, 0, "warm-up end");
    TEST_NEAR(schedule_lr(&s, 100), 1.0, 1e-12, 0, "constant");
    s.kind = CFG_LR_COSINE;
    TEST_NEAR(schedule_lr(&s, 4), 1.0, 1e-12, 0, "cosine start");
    TEST_NEAR(schedule_lr(&s, 13), 0.1, 1e-12, 0, "cosine floor at the last step");
    TEST_NEAR(schedule_lr(&s, 100), 0.1, 1e-12, 0, "cosine past the end");
    double mid = schedule_lr(&s, 4 + 9 / 2.0 > 8 ? 8 : 8);
    TEST_CHECK(mid < 1.0 && mid > 0.1, "cosine in between: %g", mid);
    for (int64_t k = 5; k < 14; k++) TEST_CHECK(schedule_lr(&s, k) <= schedule_lr(&s, k - 1), "monotone at %lld", (long long)k);
    train_config c;
    char err[256];
    TEST_CHECK(train_config_load(&c, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    lr_schedule s0 = schedule_for_stage(&c, 0);
    TEST_CHECK(s0.lr == c.optimizer.lr && s0.total == c.stages[0].steps, "stage schedule");
    int64_t start2 = train_config_stage_start(&c, 2);
    lr_schedule s2 = schedule_for_stage(&c, 2);
    TEST_NEAR(schedule_lr_global(&c, start2), schedule_lr(&s2, 0), 0, 0, "global step → stage 3 step 0");
    TEST_CHECK(schedule_lr_global(&c, train_config_total_steps(&c)) == 0, "0 past the end");
}

// adapter.freeze: a prefix holds whole name parts (ip_adapter.1 is not ip_adapter.10); the
// optimizer takes only what is not held; requires_grad follows
static void test_freeze(void) {
    cm_params ps;
    params_init_registry(&ps, CM_DEV_CPU, CM_F32, true);
    const char *names[] = {"ip_adapter.1.w", "ip_adapter.10.w", "ip_adapter.1", "image_proj.x"};
    for (int i = 0; i < 4; i++) params_new(&ps, NULL, names[i], 1, (int64_t[]){4}, CM_INIT_ZEROS);
    TEST_CHECK(params_freeze_prefix(&ps, "ip_adapter.1") == 2, "ip_adapter.1 holds ip_adapter.1.w and ip_adapter.1 only");
    TEST_CHECK(ps.items[0].frozen && !ps.items[1].frozen && ps.items[2].frozen && !ps.items[3].frozen, "which are held");
    TEST_CHECK(!ps.items[0].t->requires_grad && ps.items[1].t->requires_grad, "requires_grad follows");
    TEST_CHECK(params_freeze_prefix(&ps, "ip_adapt") == 0, "a partial name part matches nothing");
    optim o;
    char err[256];
    cm_params *regs[1] = {&ps};
    TEST_CHECK(optim_init(&o, regs, 1, NULL, 0, -1, err, sizeof err) == 0 && optim_n_params(&o) == 2 &&
               !strcmp(optim_param_at(&o, 0)->name, "ip_adapter.10.w") && !strcmp(optim_param_at(&o, 1)->name, "image_proj.x"),
               "the optimizer takes the 2 not held (%s)", err);
    optim_free(&o);
    params_free(&ps);
}

// the weight average (optimizer.ema): against a double reference of the masters after each
// applied step, with and without warm-up (made by AdamW's update, or by its own pass for a
// parameter without a gradient); a skipped step leaves it; saved, loaded bit-exact and
// resumed; files without one start it from their masters; a shard averages only its own
static void test_ema(void) {
    char err[512], path[64], path0[64];
    snprintf(path, sizeof path, "/tmp/cameo-test-optim-ema-%d.safetensors", (int)getpid());
    snprintf(path0, sizeof path0, "/tmp/cameo-test-optim-noema-%d.safetensors", (int)getpid());
    for (int warm = 0; warm < 2; warm++) {
        cm_params a, b;
        make_regs(&a, &b, CM_F32);
        cm_params *regs[2] = {&a, &b};
        optim_config oc = optim_config_default();
        oc.lr = 1e-2, oc.ema_decay = 0.75, oc.ema_warmup = warm;
        optim o;
        TEST_CHECK(optim_init(&o, regs, 2, &oc, 0, -1, err, sizeof err) == 0, "%s", err);
        int64_t n = 0;
        for (int i = 0; i < o.end; i++) n += o.slot[i].n;
        double *ref = malloc((size_t)n * sizeof *ref);
        for (int i = 0, j = 0; i < o.end; i++)  // starts equal to the masters
            for (int64_t e = 0; e < o.slot[i].n; e++) ref[j++] = ((float *)tensor_data(o.slot[i].master))[e];
        double worst = 0;
        for (int k = 0; k < 6; k++) {
            bool bad = k == 2;  // a non-finite step: nothing updated, the average included
            set_grads(&o, k, bad ? NAN : 1.0, CM_F32);
            if (k == 4) tensor_zero_grad(o.all[1]->t);  // no gradient: its average still moves to its master
            TEST_CHECK(optim_step(&o, oc.lr, NULL) == bad, "step %d", k);
            // warm-up as diffusers' EMAModel: the first update copies the weights (d = 0)
            double u = (double)(k - (k > 2)), d = warm && (1 + u) / (10 + u) < 0.75 ? (1 + u) / (10 + u) : 0.75;
            if (warm && u == 0) d = 0;
            for (int i = 0, j = 0; i < o.end; i++)
                for (int64_t e = 0; e < o.slot[i].n; e++, j++) {
                    if (!bad) ref[j] = d * ref[j] + (1 - d) * ((float *)tensor_data(o.slot[i].master))[e];
                    worst = test_max(worst, fabs(ref[j] - ((float *)tensor_data(o.slot[i].ema))[e]));
                }
        }
        TEST_CHECK(o.ema_updates == 5 && worst < 1e-6, "warm-up %d: 5 updates (%lld), the average within %.3g of the reference",
                   warm, (long long)o.ema_updates, worst);
        if (warm) {  // save, load into a fresh optimizer, step both: the same bits
            TEST_CHECK(optim_save(&o, path, err, sizeof err) == 0, "%s", err);
            cm_params a2, b2;
            make_regs(&a2, &b2, CM_F32);
            cm_params *r2[2] = {&a2, &b2};
            optim o2;
            optim_init(&o2, r2, 2, &oc, 0, -1, err, sizeof err);
            TEST_CHECK(optim_load(&o2, path, err, sizeof err) == 0 && o2.ema_updates == 5 && !o2.ema_fresh, "loaded: %s", err);
            for (int k = 6; k < 8; k++) {
                set_grads(&o, k, 1.0, CM_F32), optim_step(&o, oc.lr, NULL);
                set_grads(&o2, k, 1.0, CM_F32), optim_step(&o2, oc.lr, NULL);
            }
            bool same = true;
            for (int i = 0; i < o.end; i++) same &= !memcmp(tensor_data(o.slot[i].ema), tensor_data(o2.slot[i].ema), (size_t)o.slot[i].n * 4);
            TEST_CHECK(same, "the resumed average is bit-exact");
            // files without an average: it starts from their masters; with one, an optimizer without ignores it
            optim_config plain = oc;
            plain.ema_decay = 0;
            optim o3;
            optim_init(&o3, r2, 2, &plain, 0, -1, err, sizeof err);
            TEST_CHECK(optim_load(&o3, path, err, sizeof err) == 0 && !o3.slot[0].ema, "an average in the file is ignored: %s", err);
            TEST_CHECK(optim_save(&o3, path0, err, sizeof err) == 0, "%s", err);
            st_file *f = st_open(path0, err, sizeof err);
            TEST_CHECK(f && !st_find(f, "image_proj.w.ema") && !st_meta(f, "optim.ema_updates"), "no average saved without one");
            st_close(f);
            optim_free(&o3);
            TEST_CHECK(optim_load(&o2, path0, err, sizeof err) == 0 && o2.ema_fresh && o2.ema_updates == 0, "fresh: %s", err);
            same = true;
            for (int i = 0; i < o2.end; i++) same &= !memcmp(tensor_data(o2.slot[i].ema), tensor_data(o2.slot[i].master), (size_t)o2.slot[i].n * 4);
            TEST_CHECK(same, "a fresh average equals the loaded masters");
            optim_free(&o2);
            params_free(&a2), params_free(&b2);
            remove(path), remove(path0);
        }
        free(ref);
        optim_free(&o);
        params_free(&a), params_free(&b);
    }
    // a shard keeps the average of its own parameters only
    cm_params a, b;
    make_regs(&a, &b, CM_F32);
    cm_params *regs[2] = {&a, &b};
    optim_config oc = optim_config_default();
    oc.ema_decay = 0.5;
    optim s1;
    TEST_CHECK(optim_init(&s1, regs, 2, &oc, 1, 3, err, sizeof err) == 0 && s1.slot[0].ema && s1.slot[1].ema, "%s", err);
    TEST_CHECK(optim_save(&s1, path, err, sizeof err) == 0, "%s", err);
    st_file *f = st_open(path, err, sizeof err);
    TEST_CHECK(f && !st_find(f, "image_proj.w.ema") && st_find(f, "image_proj.b.ema") && st_find(f, "ip_adapter.0.to_k_ip.weight.ema"),
               "the shard's file holds its own averages");
    st_close(f);
    optim_free(&s1);
    oc.ema_decay = 1;
    TEST_CHECK(optim_init(&s1, regs, 2, &oc, 0, -1, err, sizeof err) == -1 && strstr(err, "decay 1"), "decay 1 refused: %s", err);
    params_free(&a), params_free(&b);
    remove(path);
}

int main(void) {
    test_freeze();
    test_reference();
    test_shards();
    test_sharded();
    test_bf16();
    test_bf16_init();
    test_save_load();
    test_ema();
    test_grad_mult();
    test_schedule();
    return test_summary("test_optim");
}

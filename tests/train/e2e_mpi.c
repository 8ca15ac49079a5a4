// e2e_mpi.c — data parallelism as users launch it: `mpirun -np 2 cameo train` against the same
// run in one process. The global batch and every sample's noise and σ are the same, so the
// per-step losses must agree to rounding, and the weights to what AdamW makes of rounding
// (it normalises tiny gradients). The AdamW state sharded over the ranks (ZeRO-1, the default)
// gives the bits of the replicated state; a sharded checkpoint resumes exactly on 2 ranks and,
// re-sharded, in one process; a missing shard is refused; a hung rank ends the job (run.step_timeout).
// Skips when mpirun cannot start two ranks.
// On CUDA (a node with two GPUs, or the emulator's two devices with its NCCL over MPI): the same
// through NCCL, in bf16. Usage: e2e_mpi PATH/TO/cameo PATH/TO/mpirun [--cuda-only STEPS | --cuda-old-rank]
// (--cuda-only: only the NCCL half, STEPS per stage, devices taken as given: the emulator's test;
// --cuda-old-rank: rank 1's cuda:1 is too old (the emulator's CUDA_EMU_CC=9.0,7.5): the run ends on
// every rank with run.device's error naming it)
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "models/safetensors.h"
#include "testutil.h"

#define MPIRUN "%s --allow-run-as-root --oversubscribe -np 2"
#define ARGS "--set stages.0.steps=10 --set stages.1.steps=6 --set stages.2.steps=4 --set run.log_every=1 --set run.ckpt_every=0 --set run.keep_last=0 --quiet " \
             "--set validation.every=5 --set validation.samples=4 --set optimizer.ema=0.9"

// the optimizer files of a checkpoint folder: optimizer.safetensors, or a sharded run's
// optimizer-K-of-N.safetensors (in K order); returns how many were opened
static int open_optim(const char *ckpt, st_file **f, int max) {
    glob_t g;
    char pat[300], err[512];
    snprintf(pat, sizeof pat, "%s/optimizer*.safetensors", ckpt);
    int n = 0;
    if (glob(pat, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc && n < max; i++) {
            f[n] = st_open(g.gl_pathv[i], err, sizeof err);
            TEST_CHECK(f[n] != NULL, "%s", err);
            if (f[n]) n++;
        }
    globfree(&g);
    TEST_CHECK(n > 0, "no optimizer file in %s", ckpt);
    return n;
}

static const st_entry *find_any(st_file *const *f, int n, const char *name) {
    for (int i = 0; i < n; i++) {
        const st_entry *e = st_find(f[i], name);
        if (e) return e;
    }
    return NULL;
}

// the f32 master weights of two checkpoints (each one optimizer file, or a sharded run's several):
// how many tensors, the largest difference relative to the tensor's largest value, and the share
// of all elements that differ by more than half the largest difference of all (after one step,
// AdamW moves each element by ±lr where its gradient is not tiny: a rank left with its own half
// batch's gradient flips the sign of some)
typedef struct { int tensors, averages; double worst, far_share; } masters;  // .master / .ema tensors compared
static masters compare_masters(const char *ck1, const char *ck2) {
    masters m = {0};
    st_file *fa[8], *fb[8];
    int na = open_optim(ck1, fa, 8), nb = open_optim(ck2, fb, 8);
    double dall = 0;
    for (int pass = 0; pass < 2; pass++) {  // pass 0: the largest difference; pass 1: how many are far
        size_t n = 0, far = 0;
        for (int j = 0; j < na && nb; j++)
            for (int i = 0; i < st_count(fa[j]); i++) {
                const st_entry *ea = st_at(fa[j], i), *eb = find_any(fb, nb, ea->name);
                // the masters, and the weight averages (optimizer.ema) beside them
                bool master = strstr(ea->name, ".master") != NULL, avg = strstr(ea->name, ".ema") != NULL;
                if ((!master && !avg) || !eb || ea->dtype != CM_F32 || eb->nbytes != ea->nbytes) continue;
                const float *x = ea->data, *y = eb->data;
                double dmax = 0, xmax = 1e-12;
                for (size_t k = 0; k < ea->nbytes / 4; k++) {
                    double d = fabs((double)x[k] - y[k]);
                    dmax = test_max(dmax, d), xmax = fmax(xmax, fabs(x[k]));
                    far += pass && d > 0.5 * dall;
                }
                n += ea->nbytes / 4;
                if (pass == 0) m.worst = fmax(m.worst, dmax / xmax), dall = fmax(dall, dmax), m.tensors += master, m.averages += avg;
            }
        if (pass) m.far_share = n ? (double)far / (double)n : 1;
    }
    for (int i = 0; i < na; i++) st_close(fa[i]);
    for (int i = 0; i < nb; i++) st_close(fb[i]);
    return m;
}

// a sharded checkpoint: one file per rank, every parameter's state in exactly one of them, the
// elements split about evenly; returns the number of .master tensors
static int check_shards(const char *ckpt, int world) {
    st_file *f[8];
    int n = open_optim(ckpt, f, 8), masters_n = 0;
    TEST_CHECK(n == world, "%s: %d optimizer files for %d ranks", ckpt, n, world);
    double elems[8] = {0}, total = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < st_count(f[j]); i++) {
            const st_entry *e = st_at(f[j], i);
            for (int k = 0; k < n; k++)
                TEST_CHECK(k == j || !st_find(f[k], e->name), "%s: %s is in two shards", ckpt, e->name);
            elems[j] += (double)e->nbytes / 4, total += (double)e->nbytes / 4;
            masters_n += strstr(e->name, ".master") != NULL;
        }
    for (int j = 0; j < n; j++) {
        printf("%s: shard %d holds %.1f%% of the optimizer state\n", ckpt, j, 100 * elems[j] / total);
        TEST_CHECK(elems[j] > 0.3 * total / world, "shard %d holds %.0f of %.0f elements", j, elems[j], total);
    }
    for (int j = 0; j < n; j++) st_close(f[j]);
    return masters_n;
}

// one process on cuda:0 against two ranks on cuda:0 and cuda:1 averaging through NCCL: bf16
// rounds differently in a half batch and in the averaged gradients, so the first step's loss
// agrees to bf16, the rest within the 10% that gpu-check.sh allows between bf16 and f32 runs
static void nccl_half(const char *cameo, const char *mpirun, const char *dir, int steps) {
    char args[360];
    snprintf(args, sizeof args, "--set stages.0.steps=%d --set stages.1.steps=%d --set stages.2.steps=%d --set run.log_every=1 "
             "--set run.ckpt_every=1 --set run.keep_last=0 --quiet --set run.device=cuda --set data.path=%s/data",
             steps, steps, steps, dir);
    TEST_CHECK(test_sh("%s train %s --set run.out_dir=%s/g1 2>%s/g1.log", cameo, args, dir, dir) == 0,
               "one process on cuda:0 (see %s/g1.log)", dir);
    TEST_CHECK(test_sh(MPIRUN " %s train %s --set run.out_dir=%s/g2 >%s/g2.log 2>&1", mpirun, cameo, args, dir, dir) == 0,
               "two ranks on cuda:0 and cuda:1 (see %s/g2.log)", dir);
    double a[64], b[64];
    int na = test_run_losses(dir, "g1", a, 64), nb = test_run_losses(dir, "g2", b, 64);
    TEST_CHECK(na == 3 * steps && nb == 3 * steps, "%d logged steps each on cuda (got %d and %d)", 3 * steps, na, nb);
    double worst = 0;
    for (int i = 1; i < na && i < nb; i++) worst = test_max(worst, fabs(a[i] - b[i]) / fabs(a[i]));
    double first = na && nb ? fabs(a[0] - b[0]) / fabs(a[0]) : 1;
    for (int i = 0; i < na && i < nb; i++) printf("step %2d  loss 1 process %.6f  2 ranks %.6f\n", i + 1, a[i], b[i]);
    printf("cuda, 1 process vs 2 ranks over NCCL: first step %.3g, later steps at most %.3g\n", first, worst);
    TEST_CHECK(first < 2e-2 && worst < 0.10, "cuda losses differ: first %.3g, later %.3g", first, worst);
    // the losses cannot tell whether the gradients were averaged (they barely move in a few
    // steps); the weights after step 1 can: measured on the emulator, 8e-6 of the elements lie
    // far apart with NCCL averaging, 1.8e-3 with the average_nccl call removed
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/g1/tiny/checkpoints/step-1", dir);
    snprintf(p2, sizeof p2, "%s/g2/tiny/checkpoints/step-1", dir);
    masters m = compare_masters(p1, p2);
    TEST_CHECK(check_shards(p2, 2) == m.tensors, "the 2 ranks' shards hold the %d master tensors", m.tensors);
    printf("master weights after step 1: %d tensors, %.3g of the elements far apart\n", m.tensors, m.far_share);
    TEST_CHECK(m.tensors > 50 && m.far_share < 2e-4, "step 1: %.3g of the elements far apart (the gradients were not "
               "averaged alike on both ranks?)", m.far_share);
    // many small buckets, each launched on the communication stream as backward makes it final,
    // against the default's two (one per owner; launched as the later of each is final, and the
    // bytes of the reduction after backward — measured by hand): the same bytes. The emulator runs
    // a collective when it is launched, so a bucket launched too early would carry a partial gradient
    TEST_CHECK(test_sh(MPIRUN " %s train %s --set optimizer.reduce_bucket_mb=0.002 --set run.out_dir=%s/g3 >%s/g3.log 2>&1", mpirun,
                       cameo, args, dir, dir) == 0, "two ranks over NCCL, 2 kB buckets (see %s/g3.log)", dir);
    TEST_CHECK(test_sh("grep -Eq 'averaged in [0-9]{2,} bucket.*: 100%%' %s/g3.log && cmp -s %s/g3/tiny/adapter.safetensors "
                       "%s/g2/tiny/adapter.safetensors", dir, dir, dir) == 0, "NCCL: small buckets give the bytes of two large ones");
}

// rank 1 on an unusable cuda:1: dist_bind_device's error (after the backend's reason) and an abort
// of both ranks, not one rank's exit while the other waits for it in ncclCommInitRank
static void old_rank(const char *cameo, const char *mpirun, const char *dir) {
    int rc = test_sh("timeout 120 " MPIRUN " %s train --set stages.0.steps=1 --set stages.1.steps=1 --set stages.2.steps=1 "
                     "--quiet --set run.device=cuda --set run.out_dir=%s/old --set data.path=%s/data >%s/old.log 2>&1",
                     mpirun, cameo, dir, dir, dir);
    TEST_CHECK(rc != 0 && rc != 124, "two ranks, cuda:1 unusable: the run fails, and ends (exit %d, see %s/old.log)", rc, dir);
    TEST_CHECK(test_sh("grep -q 'cuda:1 (emulated sm_75 (CPU)) has compute capability 7.5' %s/old.log && "
                       "grep -q 'run.device: cuda:1 (rank 1) is not usable' %s/old.log", dir, dir) == 0,
               "the log names the device and why (see %s/old.log)", dir);
}

int main(int argc, char **argv) {
    if (argc < 3) test_skip("usage: e2e_mpi PATH/TO/cameo PATH/TO/mpirun [--cuda-only STEPS | --cuda-old-rank]");
    const char *cameo = argv[1], *mpirun = argv[2];
    if (test_sh(MPIRUN " true >/dev/null 2>&1", mpirun) != 0) test_skip("mpirun cannot start 2 ranks on this machine");
    char dir[] = "/tmp/cameo-mpi-XXXXXX";
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    if (argc > 3 && !strcmp(argv[3], "--cuda-old-rank")) {
        old_rank(cameo, mpirun, dir);
        if (test_failures == 0) test_sh("rm -rf %s", dir);
        return test_summary("e2e_mpi (an unusable rank device)");
    }
    if (argc > 4 && !strcmp(argv[3], "--cuda-only")) {
        nccl_half(cameo, mpirun, dir, atoi(argv[4]));
        if (test_failures == 0) test_sh("rm -rf %s", dir);
        return test_summary("e2e_mpi (NCCL)");
    }
    TEST_CHECK(test_sh("%s train " ARGS " --set run.out_dir=%s/one --set data.path=%s/data 2>%s/one.log", cameo, dir, dir, dir) == 0, "one process");
    // a global batch the ranks cannot split: refused before any work, told once (not once per rank),
    // every rank leaving on its own (no MPI_Abort, no rank killed mid-message)
    TEST_CHECK(test_sh("! " MPIRUN " %s train " ARGS " --set stages.0.batch_size=3 --set run.out_dir=%s/odd --set data.path=%s/data "
                       ">%s/odd.log 2>&1 && test $(grep -c 'stages\\[0\\].batch_size: 3 does not split over 2 ranks' %s/odd.log) = 1 && "
                       "! grep -q -e MPI_ABORT -e SIGTERM %s/odd.log && ! test -e %s/odd", mpirun, cameo, dir, dir, dir, dir, dir, dir) == 0,
               "an unsplittable batch refused once, without an abort (see %s/odd.log)", dir);
    // ... but only in the stages still to train: one process's checkpoint at the end of a stage of
    // 3-image batches resumes on 2 ranks (a resume on another rank count; the stage is finished)
    TEST_CHECK(test_sh("%s train " ARGS " --set stages.0.batch_size=3 --set stages.0.steps=2 --set run.ckpt_every=2 --set run.out_dir=%s/odd1 "
                       "--set data.path=%s/data 2>%s/odd1.log && " MPIRUN " %s train --resume %s/odd1/tiny/checkpoints/step-2 --quiet "
                       ">%s/odd2.log 2>&1 && test -d %s/odd1/tiny/checkpoints/step-12", cameo, dir, dir, dir, mpirun, cameo, dir, dir, dir) == 0,
               "a finished stage's odd batch held a 2-rank resume back (see %s/odd2.log)", dir);
    TEST_CHECK(test_sh(MPIRUN " %s train " ARGS " --set run.out_dir=%s/two --set data.path=%s/data >%s/two.log 2>&1", mpirun, cameo, dir, dir, dir) == 0,
               "two ranks (see %s/two.log)", dir);

    char p1[256], p2[256];
    double a[64], b[64];
    int na = test_run_losses(dir, "one", a, 64), nb = test_run_losses(dir, "two", b, 64);
    TEST_CHECK(na == 20 && nb == 20, "20 logged steps each (got %d and %d): only rank 0 writes", na, nb);
    double worst = 0;
    for (int i = 0; i < na && i < nb; i++) worst = test_max(worst, fabs(a[i] - b[i]) / fabs(a[i]));
    printf("per-step loss, 1 process vs 2 ranks: max relative difference %.3g over %d steps\n", worst, na);
    TEST_CHECK(worst < 1e-5, "losses differ by %.3g", worst);
    // the validation loss: each rank its half of each global batch, the means averaged
    int64_t vs1[16], vs2[16];
    double v1[16], v2[16];
    int nv1 = test_run_validation(dir, "one", vs1, v1, 16), nv2 = test_run_validation(dir, "two", vs2, v2, 16);
    TEST_CHECK(nv1 == 4 && nv2 == 4, "validation at steps 5, 10, 15, 20 on both (got %d and %d lines)", nv1, nv2);
    double vworst = 0;
    for (int i = 0; i < nv1 && i < nv2; i++) {
        TEST_CHECK(vs1[i] == vs2[i], "validation steps %lld and %lld", (long long)vs1[i], (long long)vs2[i]);
        vworst = test_max(vworst, fabs(v1[i] - v2[i]) / fabs(v1[i]));
    }
    printf("validation loss, 1 process vs 2 ranks: max relative difference %.3g over %d validations\n", vworst, nv1);
    TEST_CHECK(vworst < 1e-5, "validation losses differ by %.3g", vworst);
    // the weight average's (optimizer.ema: sharded, put into the adapter by its owners' broadcast)
    int na1 = test_run_validation_key(dir, "one", "loss_ema", vs1, v1, 16), na2 = test_run_validation_key(dir, "two", "loss_ema", vs2, v2, 16);
    double aworst = 0;
    for (int i = 0; i < na1 && i < na2; i++) aworst = test_max(aworst, fabs(v1[i] - v2[i]) / fabs(v1[i]));
    printf("validation loss of the weight average, 1 process vs 2 ranks: max relative difference %.3g\n", aworst);
    TEST_CHECK(na1 == 4 && na2 == 4 && aworst < 1e-5, "the weight average's validation losses: %d and %d lines, %.3g apart", na1, na2,
               aworst);

    // final master weights: the same up to AdamW's normalisation of rounding-level gradients
    snprintf(p1, sizeof p1, "%s/one/tiny/checkpoints/step-20", dir);
    snprintf(p2, sizeof p2, "%s/two/tiny/checkpoints/step-20", dir);
    masters m = compare_masters(p1, p2);
    printf("master weights: %d tensors, max normalised difference %.3g\n", m.tensors, m.worst);
    TEST_CHECK(m.tensors > 50 && m.worst < 1e-3, "%d tensors, worst %.3g", m.tensors, m.worst);

    // ZeRO-1 (the default, optimizer.shard_state) against the replicated state: the same sums in
    // the same order (each gradient reduced into its owner, the grad norm's parts added in
    // parameter order), so the same bits
    TEST_CHECK(test_sh("grep -q 'AdamW state sharded (ZeRO-1): rank 0 keeps' %s/two.log && test \"$(grep -c '^done:' %s/two.log)\" = 1",
                       dir, dir) == 0, "rank 0 tells the sharding, and alone prints the summary (see %s/two.log)", dir);
    int nm = check_shards(p2, 2);
    TEST_CHECK(nm == m.tensors, "the shards hold %d master tensors, the one-process file %d", nm, m.tensors);
    TEST_CHECK(test_sh(MPIRUN " %s train " ARGS " --set optimizer.shard_state=false --set run.out_dir=%s/rep --set data.path=%s/data "
                       ">%s/rep.log 2>&1", mpirun, cameo, dir, dir, dir) == 0, "two ranks, replicated optimizer state (see %s/rep.log)", dir);
    snprintf(p1, sizeof p1, "%s/rep/tiny/checkpoints/step-20", dir);
    st_file *one_file[2];
    TEST_CHECK(open_optim(p1, one_file, 2) == 1, "the replicated run writes one optimizer.safetensors");
    st_close(one_file[0]);
    m = compare_masters(p1, p2);
    printf("2 ranks, sharded vs replicated AdamW state: %d tensors, max normalised difference %g\n", m.tensors, m.worst);
    TEST_CHECK(m.tensors > 50 && m.averages == m.tensors && m.worst == 0, "sharded and replicated differ: %d tensors, %d weight "
               "averages, worst %.3g", m.tensors, m.averages, m.worst);
    TEST_CHECK(test_sh("cmp -s %s/rep/tiny/adapter.safetensors %s/two/tiny/adapter.safetensors", dir, dir) == 0,
               "the adapters of the sharded and the replicated run are the same bytes");

    // the gradients reduced in buckets launched during backward (the default) against all of them
    // after backward (reduce_bucket_mb 0), sharded; and in many small buckets, replicated: each
    // parameter's sum is the same two numbers added, so the same bits. CAMEO_CHECK_REDUCER proves
    // that no gradient changed after its bucket's launch (the calls wait for the step's end there)
    TEST_CHECK(test_sh(MPIRUN " %s train " ARGS " --set optimizer.reduce_bucket_mb=0 --set run.out_dir=%s/nov --set data.path=%s/data "
                       ">%s/nov.log 2>&1", mpirun, cameo, dir, dir, dir) == 0, "two ranks, no overlap (see %s/nov.log)", dir);
    TEST_CHECK(test_sh("CAMEO_CHECK_REDUCER=1 " MPIRUN " -x CAMEO_CHECK_REDUCER %s train " ARGS " --set optimizer.reduce_bucket_mb=0.002 --set optimizer.shard_state=false "
                       "--set run.out_dir=%s/reps --set data.path=%s/data >%s/reps.log 2>&1", mpirun, cameo, dir, dir, dir) == 0,
               "two ranks, replicated, 2 kB buckets (see %s/reps.log)", dir);
    TEST_CHECK(test_sh("grep -q '(optimizer.reduce_bucket_mb 25): 100%% of their bytes launched during backward' %s/two.log && "
                       "grep -q 'reduce_bucket_mb 0): 0%%' %s/nov.log && grep -Eq 'averaged in [0-9]{2,} bucket.*: 100%%' %s/reps.log",
                       dir, dir, dir) == 0, "the runs tell how their gradients moved (see %s/two.log, nov.log, reps.log)", dir);
    TEST_CHECK(test_sh("cmp -s %s/nov/tiny/adapter.safetensors %s/two/tiny/adapter.safetensors && "
                       "cmp -s %s/reps/tiny/adapter.safetensors %s/rep/tiny/adapter.safetensors", dir, dir, dir, dir) == 0,
               "buckets during backward give the bytes of the reduction after it (sharded and replicated)");
    snprintf(p1, sizeof p1, "%s/nov/tiny/checkpoints/step-20", dir);
    m = compare_masters(p1, p2);
    printf("2 ranks, gradients reduced during vs after backward: %d tensors, max normalised difference %g\n", m.tensors, m.worst);
    TEST_CHECK(m.tensors > 50 && m.worst == 0, "overlapped and plain reduction differ: %d tensors, worst %.3g", m.tensors, m.worst);

    // resume from the sharded checkpoint of step 10: on 2 ranks exactly the uninterrupted run; in
    // one process (the shards' state gathered from both files) the run goes on as the one-process run
    TEST_CHECK(test_sh(MPIRUN " %s train --resume %s/two/tiny/checkpoints/step-10 --set run.out_dir=%s/res2 --quiet >%s/res2.log 2>&1",
                       mpirun, cameo, dir, dir, dir) == 0, "2 ranks resume a sharded checkpoint (see %s/res2.log)", dir);
    snprintf(p1, sizeof p1, "%s/res2/tiny/checkpoints/step-20", dir);
    m = compare_masters(p1, p2);
    printf("resumed at step 10 on 2 ranks: max normalised difference %g from the uninterrupted run\n", m.worst);
    TEST_CHECK(m.tensors > 50 && m.worst == 0, "resumed sharded run differs: %d tensors, worst %.3g", m.tensors, m.worst);
    TEST_CHECK(test_sh("%s train --resume %s/two/tiny/checkpoints/step-10 --set run.out_dir=%s/res1 --quiet 2>%s/res1.log",
                       cameo, dir, dir, dir) == 0, "one process resumes a 2-rank sharded checkpoint (see %s/res1.log)", dir);
    snprintf(p1, sizeof p1, "%s/res1/tiny/checkpoints/step-20", dir);
    snprintf(p2, sizeof p2, "%s/one/tiny/checkpoints/step-20", dir);
    m = compare_masters(p1, p2);
    printf("2 ranks' shards resumed in 1 process: max normalised difference %.3g from the one-process run\n", m.worst);
    TEST_CHECK(m.tensors > 50 && m.worst < 1e-3, "%d tensors, worst %.3g", m.tensors, m.worst);
    // a rank that cannot write its shard: the save is abandoned on every rank (no step-4, no
    // leftover), the run stops naming the rank, step-2 stays latest; --resume auto then ends with
    // the uninterrupted run's bits
    TEST_CHECK(test_sh("CAMEO_FAULT_CKPT=1:4 " MPIRUN " -x CAMEO_FAULT_CKPT %s train " ARGS " --set run.ckpt_every=2 --set run.out_dir=%s/flt "
                       "--set data.path=%s/data >%s/flt.log 2>&1", mpirun, cameo, dir, dir, dir) != 0, "a failed shard write stops the run");
    TEST_CHECK(test_sh("grep -q 'rank 1' %s/flt.log && test -d %s/flt/tiny/checkpoints/step-2 && ! test -e %s/flt/tiny/checkpoints/step-4 && "
                       "! ls -a %s/flt/tiny/checkpoints | grep -q tmp && grep -qx step-2 %s/flt/tiny/checkpoints/latest", dir, dir, dir, dir,
                       dir) == 0, "the failed save left step-2 latest and nothing half-written (see %s/flt.log)", dir);
    TEST_CHECK(test_sh(MPIRUN " %s train " ARGS " --set run.ckpt_every=2 --set run.out_dir=%s/flt --set data.path=%s/data --resume auto "
                       ">%s/flt2.log 2>&1", mpirun, cameo, dir, dir, dir) == 0, "--resume auto after the failed save (see %s/flt2.log)", dir);
    snprintf(p1, sizeof p1, "%s/flt/tiny/checkpoints/step-20", dir);
    snprintf(p2, sizeof p2, "%s/two/tiny/checkpoints/step-20", dir);
    m = compare_masters(p1, p2);
    TEST_CHECK(m.tensors > 50 && m.worst == 0, "resumed after a failed save: %d tensors, worst %.3g", m.tensors, m.worst);

    // a rank that stops for ever before step 6 (CAMEO_FAULT_HANG, as a dead node): the other waits in
    // a collective; each rank's watchdog ends its process after run.step_timeout, so the job ends
    // in seconds, naming the step; --resume auto then ends on the uninterrupted run's bytes
    TEST_CHECK(test_sh("CAMEO_FAULT_HANG=1:5 timeout 60 " MPIRUN " -x CAMEO_FAULT_HANG %s train " ARGS " --set run.ckpt_every=2 "
                       "--set run.step_timeout=5 --set run.out_dir=%s/hang --set data.path=%s/data >%s/hang.log 2>&1",
                       mpirun, cameo, dir, dir, dir) != 0, "a hung rank ends the job");
    TEST_CHECK(test_sh("grep -q 'rank 0: step 6 has not finished after 5 s (run.step_timeout)' %s/hang.log && "
                       "test -d %s/hang/tiny/checkpoints/step-4 && ! test -e %s/hang/tiny/checkpoints/step-6", dir, dir, dir) == 0,
               "the waiting rank's watchdog names the step; step-4 is the last checkpoint (see %s/hang.log)", dir);
    TEST_CHECK(test_sh(MPIRUN " %s train " ARGS " --set run.ckpt_every=2 --set run.step_timeout=5 --set run.out_dir=%s/hang "
                       "--set data.path=%s/data --resume auto >%s/hang2.log 2>&1", mpirun, cameo, dir, dir, dir) == 0,
               "--resume auto after the hang (see %s/hang2.log)", dir);
    snprintf(p1, sizeof p1, "%s/hang/tiny/checkpoints/step-20", dir);
    snprintf(p2, sizeof p2, "%s/two/tiny/checkpoints/step-20", dir);
    m = compare_masters(p1, p2);
    TEST_CHECK(m.tensors > 50 && m.worst == 0, "resumed after a hang: %d tensors, worst %.3g", m.tensors, m.worst);

    // ... rank 0 stuck in its logging after step 3 (a progress line on a full pipe, metrics on a hung
    // file system: CAMEO_FAULT_HANG=0:3:log) while rank 1 waits in the stop's agreement: the step's
    // watch covers both, so the job ends naming step 3 (it waited for ever)
    int hrc = test_sh("CAMEO_FAULT_HANG=0:3:log timeout 30 " MPIRUN " -x CAMEO_FAULT_HANG %s train " ARGS " --set run.ckpt_every=2 "
                      "--set run.step_timeout=5 --set run.out_dir=%s/hangl --set data.path=%s/data >%s/hangl.log 2>&1",
                      mpirun, cameo, dir, dir, dir);
    TEST_CHECK(hrc != 0 && hrc != 124 && test_sh("grep -q 'rank [01]: step 3 has not finished after 5 s' %s/hangl.log", dir) == 0,
               "rank 0 stuck in its logging ends the job, naming step 3 (exit %d; 124: it hung; see %s/hangl.log)", hrc, dir);
    // ... and in its line at the end of stage 1 (step 10), while rank 1 waits to sum the damage counts
    hrc = test_sh("CAMEO_FAULT_HANG=0:10:stage timeout 30 " MPIRUN " -x CAMEO_FAULT_HANG %s train " ARGS " --set run.step_timeout=5 "
                  "--set run.out_dir=%s/hangs --set data.path=%s/data >%s/hangs.log 2>&1", mpirun, cameo, dir, dir, dir);
    TEST_CHECK(hrc != 0 && hrc != 124 && test_sh("grep -q 'rank [01]: the end of the stage at step 10 has not finished' %s/hangs.log",
                                                 dir) == 0,
               "rank 0 stuck at a stage's end ends the job (exit %d; 124: it hung; see %s/hangs.log)", hrc, dir);
    // ... and in the run's last writes (the adapter after its last step, 4 here), the other rank in MPI_Finalize
    hrc = test_sh("CAMEO_FAULT_HANG=0:4:adapter timeout 30 " MPIRUN " -x CAMEO_FAULT_HANG %s train " ARGS " --set stages.0.steps=2 "
                  "--set stages.1.steps=1 --set stages.2.steps=1 --set run.step_timeout=5 --set run.out_dir=%s/hanga "
                  "--set data.path=%s/data >%s/hanga.log 2>&1", mpirun, cameo, dir, dir, dir);
    TEST_CHECK(hrc != 0 && hrc != 124 && test_sh("grep -q \"rank 0: the adapter's write after step 4 has not finished\" %s/hanga.log",
                                                 dir) == 0,
               "rank 0 stuck writing the adapter ends the job (exit %d; 124: it hung; see %s/hanga.log)", hrc, dir);

    // ... and a rank stuck in a checkpoint's write (a hung file system: CAMEO_FAULT_HANG=R:S:ckpt)
    // ends the job the same way, naming the checkpoint; step-2 stays the last
    TEST_CHECK(test_sh("CAMEO_FAULT_HANG=1:4:ckpt timeout 60 " MPIRUN " -x CAMEO_FAULT_HANG %s train " ARGS " --set run.ckpt_every=2 "
                       "--set run.step_timeout=5 --set run.out_dir=%s/hangc --set data.path=%s/data >%s/hangc.log 2>&1",
                       mpirun, cameo, dir, dir, dir) != 0, "a rank hung in a checkpoint ends the job");
    TEST_CHECK(test_sh("grep -q 'rank [01]: the checkpoint of step 4 has not finished after 5 s (run.step_timeout)' %s/hangc.log && "
                       "test -d %s/hangc/tiny/checkpoints/step-2 && ! test -e %s/hangc/tiny/checkpoints/step-4", dir, dir, dir) == 0,
               "the watchdog names the checkpoint; step-2 is the last (see %s/hangc.log)", dir);

    // SIGTERM to one rank during the validation after step 15 (CAMEO_FAULT_SIGNAL; Slurm's warning
    // lands at any moment): the ranks agree on it after the validation, save step 15 together and
    // exit 0 — not one rank leaving while the other waits in step 16; the resume ends on the
    // uninterrupted run's bytes
    TEST_CHECK(test_sh("CAMEO_FAULT_SIGNAL=1:15 timeout 120 " MPIRUN " -x CAMEO_FAULT_SIGNAL %s train " ARGS " --set run.step_timeout=20 "
                       "--set run.out_dir=%s/sig --set data.path=%s/data >%s/sig.log 2>&1", mpirun, cameo, dir, dir, dir) == 0,
               "a signal during validation: both ranks stop, exit 0 (see %s/sig.log)", dir);
    TEST_CHECK(test_sh("grep -q 'stopped by signal 15 at step 15' %s/sig.log && test -d %s/sig/tiny/checkpoints/step-15 && "
                       "! test -e %s/sig/tiny/checkpoints/step-16", dir, dir, dir) == 0,
               "step 15 saved after the validation's signal (see %s/sig.log)", dir);
    TEST_CHECK(test_sh(MPIRUN " %s train " ARGS " --set run.out_dir=%s/sig --set data.path=%s/data --resume auto >%s/sig2.log 2>&1",
                       mpirun, cameo, dir, dir, dir) == 0, "--resume auto after the signal (see %s/sig2.log)", dir);
    snprintf(p1, sizeof p1, "%s/sig/tiny/checkpoints/step-20", dir);
    snprintf(p2, sizeof p2, "%s/two/tiny/checkpoints/step-20", dir);
    m = compare_masters(p1, p2);
    TEST_CHECK(m.tensors > 50 && m.worst == 0, "resumed after the signal: %d tensors, worst %.3g", m.tensors, m.worst);

    // a shard missing from the folder: the checkpoint is refused, naming the file
    TEST_CHECK(test_sh("cp -r %s/two/tiny/checkpoints/step-10 %s/cut && rm %s/cut/optimizer-00001-of-00002.safetensors && "
                       "! %s train --resume %s/cut --set run.out_dir=%s/cutrun --quiet 2>%s/cut.log && "
                       "grep -q 'optimizer-00001-of-00002' %s/cut.log", dir, dir, dir, cameo, dir, dir, dir, dir) == 0,
               "a checkpoint missing a shard is refused, naming it (see %s/cut.log)", dir);

    // a global batch that does not split over the ranks is refused before any work
    TEST_CHECK(test_sh(MPIRUN " %s train --set stages.0.batch_size=3 --set run.out_dir=%s/bad --set data.path=%s/data --quiet >%s/bad.log 2>&1",
                  mpirun, cameo, dir, dir, dir) != 0, "odd batch refused");
    TEST_CHECK(test_sh("grep -q 'stages\\[0\\].batch_size' %s/bad.log", dir) == 0, "the message names stages[0].batch_size");

    // damaged records (every third fails its checksum; the loader skips it): with one sample per
    // rank, one rank's micro-batch is often empty — each rank's loss is weighted by its share of the
    // samples read, so the 2 ranks still follow the one process. Small buckets and recompute
    // scopes on the first 2 of the 4 blocks (the other 2 on the plain tape: gradients become final
    // both ways): a rank with nothing to read launches its buckets after the other's backward
    // did, in the same order. The last stage's recompute is auto: the ranks agree on one choice
    // (a collective after the first step's backward) and follow the one process
    TEST_CHECK(test_sh("cp -r %s/data %s/dmg", dir, dir) == 0 && test_damage_records(strcat(strcpy(p1, dir), "/dmg"), 3) > 0,
               "a damaged copy of the dataset");
#define DARGS "--set stages.0.steps=6 --set stages.1.steps=3 --set stages.2.steps=3 --set stages.0.batch_size=2 " \
              "--set stages.1.batch_size=2 --set stages.2.batch_size=2 --set run.log_every=1 --set run.ckpt_every=0 --quiet " \
              "--set optimizer.reduce_bucket_mb=0.002 --set train.recompute=2 --set stages.2.recompute=auto"
    TEST_CHECK(test_sh("%s train " DARGS " --set run.out_dir=%s/dmg1 --set data.path=%s/dmg 2>%s/dmg1.log", cameo, dir, dir, dir) == 0,
               "one process on damaged data (see %s/dmg1.log)", dir);
    TEST_CHECK(test_sh("CAMEO_CHECK_REDUCER=1 CAMEO_PROFILE=%s/prof.md " MPIRUN " -x CAMEO_CHECK_REDUCER -x CAMEO_PROFILE %s train " DARGS
                       " --set run.out_dir=%s/dmg2 --set data.path=%s/dmg >%s/dmg2.log 2>&1", dir, mpirun, cameo,
                       dir, dir, dir) == 0, "two ranks on damaged data (see %s/dmg2.log)", dir);
    // CAMEO_PROFILE=FILE under 2 ranks: a table per rank, in FILE.rank0 and FILE.rank1
    TEST_CHECK(test_sh("grep -q 'cameo train, rank 0 of 2: where the time went' %s/prof.md.rank0 && "
                       "grep -q 'cameo train, rank 1 of 2: where the time went' %s/prof.md.rank1 && "
                       "grep -q '^| gemm' %s/prof.md.rank1 && test ! -e %s/prof.md", dir, dir, dir, dir) == 0,
               "the op profiler's table of each rank in its own file (see %s/prof.md.rank*)", dir);
    TEST_CHECK(test_sh("grep -q 'skipped as damaged' %s/dmg2.log", dir) == 0, "the skipped records are reported");
    TEST_CHECK(test_sh("grep -q 'stage 3/3 (.*): recompute: auto: the first 0 of 4' %s/dmg1.log && "
                       "test $(grep -c 'stage 3/3 (.*): recompute: auto' %s/dmg2.log) = 1", dir, dir) == 0,
               "recompute auto under 2 ranks: one choice, told once (see %s/dmg2.log)", dir);
    na = test_run_losses(dir, "dmg1", a, 64), nb = test_run_losses(dir, "dmg2", b, 64);
    TEST_CHECK(na == 12 && nb == 12, "12 logged steps each on damaged data (got %d and %d)", na, nb);
    worst = 0;
    for (int i = 0; i < na && i < nb; i++)
        if (a[i] != 0 || b[i] != 0) worst = test_max(worst, fabs(a[i] - b[i]) / fabs(a[i]));  // 0: a batch with nothing readable
    printf("damaged data, per-step loss, 1 process vs 2 ranks: max relative difference %.3g\n", worst);
    TEST_CHECK(worst < 1e-5, "losses on damaged data differ by %.3g", worst);
    snprintf(p1, sizeof p1, "%s/dmg1/tiny/checkpoints/step-12", dir);
    snprintf(p2, sizeof p2, "%s/dmg2/tiny/checkpoints/step-12", dir);
    m = compare_masters(p1, p2);
    printf("damaged data, master weights: max normalised difference %.3g\n", m.worst);
    TEST_CHECK(m.tensors > 50 && m.worst < 1e-3, "%d tensors, worst %.3g", m.tensors, m.worst);

    if (test_sh("test \"$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')\" -ge 2") == 0) nccl_half(cameo, mpirun, dir, 10);
    else printf("fewer than 2 GPUs visible: the NCCL variant is not run\n");
    if (test_failures == 0) test_sh("rm -rf %s", dir);
    return test_summary("e2e_mpi");
}

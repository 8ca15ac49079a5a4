// eval_cli.c — `cameo eval`: an evaluation sweep. Checkpoints × subject scales × guidances × seeds ×
// (reference, prompt) pairs: each image sampled, saved, and scored against its reference (DINO-I,
// SigLIP-I: eval/metrics.h); one JSON line per image appended as it finishes, so an interrupted
// sweep resumes where it stopped; a summary table per checkpoint × scale × guidance.
#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data/fsutil.h"
#include "eval/args.h"
#include "eval/eval_models.h"
#include "eval/pairs.h"
#include "eval/report.h"
#include "eval/results.h"
#include "eval/tags.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/cli.h"
#include "train/progress.h"

#define EV_MAX_LIST 32
#define EV_MAX_CKPT 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: cameo eval CHECKPOINT [CHECKPOINT ...] --pairs PAIRS.jsonl --out DIR\n"
            "       cameo eval --config CONFIG.yaml [--set KEY=VALUE ...] ADAPTER [ADAPTER ...] --pairs PAIRS.jsonl --out DIR\n"
            "                  [--scales 0.9] [--guidance 3.5] [--seeds 0] [--steps 28] [--size WxH] [--clip DIR]\n"
            "                  [--device D] [--ema] [--quiet]\n"
            "  CHECKPOINT  checkpoint folders (or a run's checkpoints/ folder: its latest), from runs with the same models\n"
            "  --config    the models from a config (as cameo train reads it); then the sources are adapter files:\n"
            "              the released .bin, or safetensors (cameo export's, a checkpoint's adapter.safetensors);\n"
            "              --set overrides its keys as cameo train's does (e.g. --set model.dtype=bf16)\n"
            "  --pairs     one JSON line per reference and prompt: {\"ref\": \"me.png\", \"prompt\": \"the character waving\"}\n"
            "              (ref relative to the file's folder; PNG, JPEG or WebP)\n"
            "  --pairs-from DATASET [--pairs-n 16]   instead: pairs drawn from a cameo dataset (a held-out one, for\n"
            "              generalisation): N characters, each one's first image as the reference, the caption of\n"
            "              its next as the prompt; written to DIR/pairs.jsonl and DIR/refs/ (a rerun keeps them;\n"
            "              another DATASET or N is refused)\n"
            "  --scales, --guidance, --seeds   comma-separated lists, each value once; the sweep is their product x\n"
            "              checkpoints x pairs\n"
            "              (scale 0 is plain FLUX: the baseline without the adapter)\n"
            "  --out       DIR/results.jsonl   one line per image, appended as each finishes (a rerun skips those done)\n"
            "              DIR/summary.md      per checkpoint x scale x guidance: images, DINO-I, SigLIP-I (and CLIP-I, CLIP-T with --clip) mean +- sd\n"
            "              DIR/images/TAG/     the images (TAG: the checkpoint folder's name; -ema after it with --ema;\n"
            "                                  -2, -3 for another checkpoint of that name: DIR/tags.json)\n"
            "              DIR/sheets/pP.png   per pair: the reference, then a row per checkpoint x scale x guidance\n"
            "  --ema       each checkpoint's weight average (runs with optimizer.ema) in place of its weights\n"
            "  --clip      a full CLIP model (weights, config.json, tokenizer; e.g. openai/clip-vit-large-patch14):\n"
            "              adds CLIP-I and CLIP-T\n"
            "  Scores: cosine of the reference's and the image's DINOv2 CLS (DINO-I) and mean-pooled SigLIP\n"
            "  (SigLIP-I) embeddings, through the adapter's own towers and reference view; with --clip, of their\n"
            "  CLIP image embeddings (CLIP-I) and of the image's and the prompt's (CLIP-T).\n");
}

// every pair once: a pair twice has one key for two images (made twice; under MPI by two ranks)
static int pairs_distinct(const char *path, const eval_pair *pairs, char ids[][EVAL_PAIR_ID_LEN], int np, char *err, size_t errlen) {
    for (int i = 0; i < np; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(ids[k], ids[i])) {
                snprintf(err, errlen, "%s: lines %d and %d are the same pair (ref %.1000s, prompt \"%.200s\"): give each once", path, pairs[k].line,
                         pairs[i].line,
                         pairs[i].ref, pairs[i].prompt);
                return -1;
            }
    return 0;
}

// a result's key writes scales and guidances to 9 significant digits: two values alike in those
// would be one key (one image made twice, the second line replacing the first)
static int list_distinct_in_key(const char *opt, const double *v, int n) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < i; k++) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%.9g", v[k]), snprintf(b, sizeof b, "%.9g", v[i]);
            if (!strcmp(a, b)) {
                fprintf(stderr, "cameo eval: %s: %.17g and %.17g are the same to 9 significant digits (%s, as results are keyed): give "
                                "values that differ there\n", opt, v[k], v[i], a);
                return -1;
            }
        }
    return 0;
}

int eval_cli(int argc, char **argv) {
    const char *pairs_from = NULL;
    int pairs_n = 16;
    bool pairs_n_given = false;
    static char drawn[PATH_MAX + 32];  // the pairs file --pairs-from writes
    const char *ckpts[EV_MAX_CKPT], *pairs_path = NULL, *outdir = NULL, *device = NULL, *clip_path = NULL, *config = NULL;
    int nck = 0, ns = 1, ng = 1, nseed = 1;
    double scales[EV_MAX_LIST] = {0.9}, guids[EV_MAX_LIST] = {3.5}, seeds[EV_MAX_LIST] = {0};
    eval_sample_opts o = {.steps = 28};
    bool quiet = false, ema = false;
    static const char *sets[256];  // --config's overrides
    int n_sets = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--pairs") && v) pairs_path = argv[++i];
        else if (!strcmp(a, "--pairs-from") && v) pairs_from = argv[++i];
        else if (!strcmp(a, "--pairs-n") && v) { if (eval_arg_int("eval", a, argv[++i], 1, 100000, &pairs_n)) return 2; pairs_n_given = true; }
        else if (!strcmp(a, "--out") && v) outdir = argv[++i];
        else if (!strcmp(a, "--device") && v) device = argv[++i];
        else if (!strcmp(a, "--clip") && v) clip_path = argv[++i];
        else if (!strcmp(a, "--config") && v) config = argv[++i];
        else if (!strcmp(a, "--set") && v) {
            if (n_sets == 256) { fprintf(stderr, "cameo eval: more than 256 --set\n"); return 2; }
            sets[n_sets++] = argv[++i];
        }
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--ema")) ema = true;
        // lists without repeats (each rank's share of the images assumes one image per key)
        else if (!strcmp(a, "--scales") && v) { if (eval_arg_list("eval", a, argv[++i], scales, EV_MAX_LIST, &ns)) return 2; }
        else if (!strcmp(a, "--guidance") && v) { if (eval_arg_list("eval", a, argv[++i], guids, EV_MAX_LIST, &ng)) return 2; }
        else if (!strcmp(a, "--seeds") && v) { if (eval_arg_list("eval", a, argv[++i], seeds, EV_MAX_LIST, &nseed)) return 2; }
        else if (!strcmp(a, "--steps") && v) { if (eval_arg_int("eval", a, argv[++i], 1, 1024, &o.steps)) return 2; }
        else if (!strcmp(a, "--size") && v) { if (eval_arg_size("eval", a, argv[++i], &o.width, &o.height)) return 2; }
        else if (!v && eval_arg_missing("eval", a, (const char *const[]){"--pairs", "--pairs-from", "--pairs-n", "--out", "--device", "--clip",
                                                                        "--config", "--set", "--scales", "--guidance", "--seeds", "--steps", "--size",
                                                                        NULL})) return 2;
        else if (a[0] != '-') {
            if (nck == EV_MAX_CKPT) { fprintf(stderr, "cameo eval: more than %d checkpoints in one sweep\n", EV_MAX_CKPT); return 2; }
            ckpts[nck++] = a;
        }
        else { fprintf(stderr, "cameo eval: unknown argument '%s'\n", a); usage(stderr); return 2; }
    }
    if (n_sets && !config) {
        fprintf(stderr, "cameo eval: --set overrides --config's keys; checkpoints carry their own config (cameo sample and eval read it)\n");
        return 2;
    }
    if (ema && config) {
        fprintf(stderr, "cameo eval: --ema reads checkpoints' weight averages: give checkpoints, not --config and adapter files\n");
        return 2;
    }
    if (!nck || (!pairs_path == !pairs_from) || !outdir) {
        if (pairs_path && pairs_from) fprintf(stderr, "cameo eval: --pairs or --pairs-from, not both\n");
        else fprintf(stderr, "cameo eval: missing %s\n", !nck ? (config ? "ADAPTER" : "CHECKPOINT") : !outdir ? "--out DIR"
                                                                                                   : "--pairs PAIRS.jsonl (or --pairs-from DATASET)");
        usage(stderr);
        return 2;
    }
    if (pairs_n_given && !pairs_from) {  // with --pairs it would be ignored: the file's lines are the pairs
        fprintf(stderr, "cameo eval: --pairs-n sizes the pairs --pairs-from draws; with --pairs the file's lines are the pairs\n");
        return 2;
    }
    if (list_distinct_in_key("--scales", scales, ns) || list_distinct_in_key("--guidance", guids, ng)) return 2;
    // seeds below 2^53: exact in the list's doubles (a larger one is rounded to another seed, 1e20 does
    // not fit the sampler's uint64) and in the key, the name and the line
    for (int i = 0; i < nseed; i++)
        if (seeds[i] < 0 || seeds[i] != floor(seeds[i]) || seeds[i] > 9007199254740991.0) {
            fprintf(stderr, "cameo eval: --seeds: %.17g is not a whole number in 0..9007199254740991 (2^53 - 1)\n", seeds[i]);
            return 2;
        }

    static char err[8192];
    int np = 0, rc = 0;
    dist d;  // under mpirun / srun, the images are shared among the ranks (one GPU each)
    dist_init(&d, NULL, NULL);
    cm_warn_mute(d.rank > 0);  // rank 0's warnings stand for all
    eval_pair *pairs = NULL;
    if (pairs_from) {  // rank 0 draws them (once: a rerun finds DIR/pairs.jsonl), then every rank reads them
        int skipped = 0;
        if (d.rank == 0 && (fs_mkdirs(outdir) || eval_pairs_from_dataset(pairs_from, pairs_n, outdir, drawn, sizeof drawn, &skipped, err, sizeof err))) {
            if (!err[0]) snprintf(err, sizeof err, "%s: cannot create (%s)", outdir, strerror(errno));
            rc = 1;
        }
        if (!rc && skipped && d.rank == 0) fprintf(stderr, "cameo eval: %s: %d damaged records skipped while drawing pairs\n", pairs_from, skipped);
        snprintf(drawn, sizeof drawn, "%s/pairs.jsonl", outdir);
        pairs_path = drawn;
        rc = dist_max_int(&d, rc);
    }
    if (!rc) rc = eval_pairs_read(pairs_path, &pairs, &np, err, sizeof err) ? 1 : 0;
    if (!rc) rc = eval_pairs_check(pairs_path, pairs, np, err, sizeof err) ? 1 : 0;  // before minutes of loading models
    char (*pids)[EVAL_PAIR_ID_LEN] = rc ? NULL : calloc((size_t)np, sizeof *pids);  // each pair's id: its keys go by content
    if (!rc && !pids) { snprintf(err, sizeof err, "out of host memory"); rc = 1; }
    for (int p = 0; !rc && p < np; p++) eval_pair_id(pairs[p].ref, pairs[p].prompt, pids[p]);
    if (!rc && pairs_distinct(pairs_path, pairs, pids, np, err, sizeof err)) rc = 2;

    // the sources: checkpoints (resolved; one set of models, the first's config, for all) or, with
    // --config, adapter files
    // srcs: what the results are keyed by — the folder, and with --ema "#ema" after it
    static char dirs[EV_MAX_CKPT][PATH_MAX], srcs[EV_MAX_CKPT][PATH_MAX + 8], tags[EV_MAX_CKPT][96], bases[EV_MAX_CKPT][96];
    eval_models em;
    memset(&em, 0, sizeof em);
    for (int c = 0; c < nck && !rc; c++) {  // resolved first: a source given twice is refused before any loading
        if (config && access(ckpts[c], R_OK)) { snprintf(err, sizeof err, "%s: cannot read the adapter (%s)", ckpts[c], strerror(errno)); rc = 1; }
        if (config) snprintf(dirs[c], sizeof dirs[c], "%.4000s", ckpts[c]);
        else if (ckpt_resolve(ckpts[c], dirs[c], sizeof dirs[c], err, sizeof err)) rc = 1;
    }
    for (int c = 0; c < nck && !rc; c++) {  // absolute: a rerun from another folder finds its lines
        char abs[PATH_MAX];
        if (realpath(dirs[c], abs)) snprintf(dirs[c], sizeof dirs[c], "%.4000s", abs);
        snprintf(srcs[c], sizeof srcs[c], "%s%s", dirs[c], ema ? "#ema" : "");
        for (int k = 0; k < c && !rc; k++)
            if (!strcmp(srcs[k], srcs[c])) {
                snprintf(err, sizeof err, "%s and %s are the same %s (%s): give it once", ckpts[k], ckpts[c], config ? "adapter" : "checkpoint", dirs[c]);
                rc = 2;
            }
    }
    if (!rc && config) rc = eval_models_open_config(&em, config, sets, n_sets, device, d.local_rank, ckpts[0], &o.width, &o.height, err,
                                                     sizeof err);
    else if (!rc) {  // dirs[0] resolved and verified above
        rc = eval_models_open_dir(&em, dirs[0], device, d.local_rank, &o.width, &o.height, err, sizeof err);
        for (int c = 1; c < nck && !rc; c++)
            if (!eval_models_same(&em, dirs[c], err, sizeof err)) rc = 1;
    }
    char *setup = NULL;  // what the images are made on: part of their keys (eval_setup)
    if (!rc) {
        char dev[32], cfg_abs[PATH_MAX];
        device_name(em.m.dev, dev, sizeof dev);
        dev[strcspn(dev, ":")] = 0;  // cuda, not cuda:N: ranks of one sweep differ in N
        if (config && !realpath(config, cfg_abs)) snprintf(cfg_abs, sizeof cfg_abs, "%.4000s", config);
        setup = eval_setup(dev, dtype_name(em.m.dtype), config ? cfg_abs : NULL, sets, n_sets);
    }
    for (int c = 0; c < nck && !rc; c++) {  // the tag's base: the folder's (file's) name; eval_tags_assign makes it unique
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%.4000s", dirs[c]);
        snprintf(bases[c], 80, "%s", basename(tmp));
        char *ext = config ? strrchr(bases[c], '.') : NULL;
        if (ext && (!strcmp(ext, ".safetensors") || !strcmp(ext, ".bin"))) *ext = 0;
        if (ema) strncat(bases[c], "-ema", sizeof bases[c] - strlen(bases[c]) - 1);
    }

    char path[PATH_MAX + 64], results[PATH_MAX + 32], mine[PATH_MAX + 48];
    eval_results done = {0};
    eval_clip clip = {0};
    int cdim = 0;
    // stale: lines of this sweep without CLIP scores, with --clip; other_clip: with another CLIP model's
    int damaged = 0, cut = 0, stale = 0, other_clip = 0;
    snprintf(results, sizeof results, "%s/results.jsonl", outdir);
    if (d.rank) snprintf(mine, sizeof mine, "%s/results.rank-%d.jsonl", outdir, d.rank);  // one writer per file
    else snprintf(mine, sizeof mine, "%s", results);
    if (!rc && d.rank == 0 && fs_mkdirs(outdir)) { snprintf(err, sizeof err, "%s: cannot create (%s)", outdir, strerror(errno)); rc = 1; }
    if (!rc && d.rank == 0 && eval_results_check_ours(results, err, sizeof err)) rc = 1;  // before anything is rewritten
    if (!rc && d.rank == 0 && eval_results_merge_ranks(outdir, results, &cut, err, sizeof err) < 0) rc = 1;  // repairs, then appends
    if (!rc && d.rank == 0 && eval_results_read(results, &done, &damaged, err, sizeof err)) rc = 1;  // damaged lines: rewritten here
    if (!rc && d.rank == 0 && eval_tags_assign(outdir, nck, srcs, bases, true, tags, err, sizeof err)) rc = 1;
    damaged += cut;
    if (dist_max_int(&d, rc)) goto out;  // every rank reads the files rank 0 has made whole
    if (d.rank && eval_results_read(results, &done, &damaged, err, sizeof err)) rc = 1;
    if (!rc && d.rank && eval_tags_assign(outdir, nck, srcs, bases, false, tags, err, sizeof err)) rc = 1;
    if (!rc && damaged && d.rank == 0) fprintf(stderr, "cameo eval: %s: %d damaged line(s) dropped (an interrupted write); those images run again\n", results, damaged);
    char clip_abs[PATH_MAX] = "";  // the CLIP model as the lines name it: scores of another model are made again
    uint64_t clip_id = 0;
    if (clip_path) {
        if (!realpath(clip_path, clip_abs)) snprintf(clip_abs, sizeof clip_abs, "%.4000s", clip_path);
        clip_id = eval_src_hash(clip_abs);
    }
    if (!rc && clip_path) {
        char e[1024];
        if (eval_clip_open(&clip, clip_path, em.m.dev, em.m.dtype, e, sizeof e)) {
            snprintf(err, sizeof err, "--clip %s: %s", clip_path, e);
            rc = 1;
        } else cdim = eval_clip_dim(&clip);
    }

    // the references: views and embeddings once
    if (!rc && eval_pairs_prepare(&em.m, cdim ? &clip : NULL, pairs_path, pairs, np, err, sizeof err)) rc = 1;

    if (dist_max_int(&d, rc)) goto out;
    int total = nck * ns * ng * nseed * np, todo = 0, todo_all = 0, made = 0, item = 0;
    for (int c = 0; c < nck && !rc; c++)
        for (int s = 0; s < ns; s++)
            for (int g = 0; g < ng; g++)
                for (int k = 0; k < nseed; k++)
                    for (int p = 0; p < np; p++) {
                        char *key = eval_key(srcs[c], pids[p], scales[s], guids[g], seeds[k], o.steps, o.width, o.height, setup);
                        bool need = !eval_results_has(&done, key, clip_id);
                        todo += need && todo_all % d.world == d.rank;  // this rank's share: every world-th image to make
                        todo_all += need;
                        int at = eval_results_find(&done, key);
                        stale += need && at >= 0 && isnan(done.v[at].clip_i);
                        other_clip += need && at >= 0 && !isnan(done.v[at].clip_i);
                        free(key);
                    }
    if (!rc && !quiet && d.rank == 0)
        fprintf(stderr, "cameo eval: %d images (%d checkpoints x %d scales x %d guidances x %d seeds x %d pairs), %d done before, %d to make, %dx%d, %d steps%s\n",
                total, nck, ns, ng, nseed, np, total - todo_all, todo_all, o.width, o.height, o.steps,
                d.world > 1 ? " (shared among the ranks)" : "");
    if (!rc && stale && d.rank == 0)  // the file keeps the old lines; the new one of a key replaces it in the summary
        fprintf(stderr, "cameo eval: %d of them made before without CLIP scores: made again with --clip\n", stale);
    if (!rc && other_clip && d.rank == 0)
        fprintf(stderr, "cameo eval: %d of them scored before with another CLIP model: made again with --clip %s\n", other_clip, clip_abs);
    double t_start = progress_now();
    eval_results fresh = {0};  // this run's images: done stays as read, so each rank's share is the one counted above
    for (int c = 0; c < nck && !rc && todo; c++) {
        bool loaded = false;
        for (int s = 0; s < ns && !rc; s++)
            for (int g = 0; g < ng && !rc; g++)
                for (int k = 0; k < nseed && !rc; k++)
                    for (int p = 0; p < np && !rc; p++) {
                        char *key = eval_key(srcs[c], pids[p], scales[s], guids[g], seeds[k], o.steps, o.width, o.height, setup);
                        if (eval_results_has(&done, key, clip_id) || item++ % d.world != d.rank) { free(key); continue; }
                        if (!loaded && (config ? ic_models_load_adapter_file(&em.m, dirs[c], err, sizeof err)
                                               : eval_models_load_adapter(&em, dirs[c], ema, err, sizeof err))) {
                            rc = 1;
                            free(key);
                            break;
                        }
                        loaded = true;
                        double t0 = progress_now();
                        eval_sample_opts oo = o;
                        oo.ip_scale = scales[s], oo.guidance = guids[g], oo.seed = (uint64_t)seeds[k];
                        char rel[400];
                        eval_image_name(rel, sizeof rel, tags[c], p, pids[p], scales[s], guids[g], seeds[k], o.steps, o.width, o.height, setup);
                        snprintf(path, sizeof path, "%s/images/%s", outdir, tags[c]);
                        if (fs_mkdirs(path)) { snprintf(err, sizeof err, "%s: cannot create (%s)", path, strerror(errno)); rc = 1; }
                        snprintf(path, sizeof path, "%s/%s", outdir, rel);
                        eval_scores sc = {0};
                        if (!rc && eval_make_image(&em.m, &em.dec, cdim ? &clip : NULL, &pairs[p], &oo, path, &sc, err, sizeof err)) rc = 1;
                        eval_rec r = {.scale = scales[s], .guidance = guids[g], .steps = o.steps, .pair = p, .w = o.width, .h = o.height,
                                    .dino = sc.dino_i, .siglip = sc.siglip_i, .clip_i = sc.clip_i, .clip_t = sc.clip_t,
                                    .seconds = progress_now() - t0, .clip = cdim ? clip_id : 0};
                        snprintf(r.tag, sizeof r.tag, "%s", tags[c]);
                        snprintf(r.setup_label, sizeof r.setup_label, "%s", setup);
                        r.setup = eval_src_hash(setup);
                        if (!rc) {
                            cJSON *j = cJSON_CreateObject();
                            cJSON_AddStringToObject(j, "key", key);
                            cJSON_AddStringToObject(j, "checkpoint", dirs[c]);
                            if (ema) cJSON_AddStringToObject(j, "weights", "ema");
                            cJSON_AddStringToObject(j, "checkpoint_tag", tags[c]);
                            cJSON_AddNumberToObject(j, "pair", p);
                            cJSON_AddStringToObject(j, "pair_id", pids[p]);
                            char ref_abs[PATH_MAX];  // absolute, as checkpoint: a relative one would hold only from the folder eval ran in
                            cJSON_AddStringToObject(j, "ref", realpath(pairs[p].ref, ref_abs) ? ref_abs : pairs[p].ref);
                            cJSON_AddStringToObject(j, "prompt", pairs[p].prompt);
                            cJSON_AddNumberToObject(j, "scale", r.scale);
                            cJSON_AddNumberToObject(j, "guidance", r.guidance);
                            char sd[32];  // every digit: cJSON's 15 significant ones would round a seed past 10^15
                            snprintf(sd, sizeof sd, "%.0f", seeds[k]);
                            cJSON_AddRawToObject(j, "seed", sd);
                            cJSON_AddNumberToObject(j, "steps", o.steps);
                            cJSON_AddNumberToObject(j, "width", o.width);
                            cJSON_AddNumberToObject(j, "height", o.height);
                            cJSON_AddStringToObject(j, "setup", setup);
                            cJSON_AddStringToObject(j, "image", rel);
                            cJSON_AddNumberToObject(j, "dino_i", r.dino);
                            cJSON_AddNumberToObject(j, "siglip_i", r.siglip);
                            if (cdim) {
                                cJSON_AddNumberToObject(j, "clip_i", r.clip_i);
                                cJSON_AddNumberToObject(j, "clip_t", r.clip_t);
                                cJSON_AddStringToObject(j, "clip", clip_abs);
                            }
                            cJSON_AddNumberToObject(j, "seconds", r.seconds);
                            char *line = cJSON_PrintUnformatted(j);
                            rc = eval_append_line(mine, line, err, sizeof err) ? 1 : 0;
                            free(line);
                            cJSON_Delete(j);
                            if (!rc) {
                                r.src = eval_src_hash(srcs[c]);
                                eval_results_add(&fresh, key, &r);
                                key = NULL;
                            }
                        }
                        free(key);
                        made++;
                        if (!rc && !quiet && d.rank == 0) {
                            double el = progress_now() - t_start, rate = made / (el > 0 ? el : 1e-9);
                            char eta[32];
                            progress_fmt_duration((todo - made) / rate, eta, sizeof eta);
                            fprintf(stderr, "%seval %d/%d  %.2f img/s  ETA %s  (%s, scale %g, guidance %g, seed %.0f, pair %d)%s",
                                    isatty(2) ? "\r\033[K" : "", made, todo, rate, eta, tags[c], scales[s], guids[g], seeds[k], p,
                                    isatty(2) && made < todo ? "" : "\n");
                        }
                    }
    }
    for (int i = 0; i < fresh.n; i++) eval_results_add(&done, fresh.keys[i], &fresh.v[i]), fresh.keys[i] = NULL;
    fresh.n = 0;
    eval_results_free(&fresh);
    if (dist_max_int(&d, rc)) goto out;  // every rank done: rank 0 takes their lines and writes the summary
    if (d.rank == 0 && d.world > 1) {
        eval_results all = {0};
        int dmg;
        if (eval_results_merge_ranks(outdir, results, &dmg, err, sizeof err) < 0 || eval_results_read(results, &all, &dmg, err, sizeof err)) rc = 1;
        eval_results_free(&done);
        done = all;
    }
    if (!rc && d.rank == 0) {  // the summary of everything in results.jsonl (earlier runs' lines included)
        char title[PATH_MAX + 64];
        snprintf(title, sizeof title, "cameo eval — %d images", done.n);
        char *md = eval_summary_text(&done, title);
        snprintf(path, sizeof path, "%s/summary.md", outdir);
        rc = fs_write_atomic(path, md, strlen(md), err, sizeof err) ? 1 : 0;
        if (!rc && eval_contact_sheets(outdir, &done, pairs, pids, np, srcs, tags, nck, scales, ns, guids, ng, seeds, nseed, o.steps, o.width, o.height, setup, err,
                                          sizeof err))
            rc = 1;
        if (!rc && !quiet) printf("%s\n%s, %s and %s/sheets/\n", md, results, path, outdir);
        free(md);
    }
out:
    if (rc) fprintf(stderr, "cameo eval%s: %s\n", d.world > 1 ? " (a rank)" : "", err);
    eval_results_free(&done);
    free(setup);
    eval_pairs_free(pairs, np);
    free(pids);
    eval_clip_close(&clip);
    eval_models_close(&em);
    if (d.world > 1) rc = dist_max_int(&d, rc);  // the ranks end together
    dist_finalize(&d);
    return rc;
}

// inspect.c — `cameo inspect`: lists a weights file or folder (detected model, tensors, shapes,
// dtypes, parameter count), or an architecture at full size without allocating it.
//   cameo inspect PATH [--quiet]          PATH: .safetensors, index JSON, or a folder of them
//   cameo inspect --arch NAME [--quiet]   NAME: instantcharacter, instantcharacter-tiny, flux-dev, flux-vae, t5-xxl, clip-l,
//                                         siglip-so400m, dinov2-giant
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "models/ic_adapter.h"
#include "models/safetensors.h"
#include "train/cli.h"
#include "models/dinov2.h"
#include "models/siglip.h"
#include "models/clip_text.h"
#include "models/flux.h"
#include "models/t5.h"
#include "models/vae.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cameo inspect PATH [--quiet]         list a .safetensors file, index JSON or folder, or a\n"
               "                                            torch.save .bin (every crc32 checked); a checkpoint\n"
               "                                            (folder, a run's checkpoints/ or run folder): verified\n"
               "       cameo inspect --arch NAME [--quiet]  an architecture at full size, nothing allocated\n"
               "  NAME: instantcharacter, instantcharacter-tiny, flux-dev, flux-vae, siglip-so400m, dinov2-giant,\n"
               "        t5-xxl, clip-l\n"
               "  --quiet: the summary only, no per-tensor lines\n");
}

static const char *shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && at < n; d++) at += (size_t)snprintf(buf + at, n - at, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

static int64_t numel_of(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

// "2,794,932,864"
static const char *commas(int64_t v, char *buf, size_t n) {
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)v);
    int len = (int)strlen(raw), lead = raw[0] == '-';
    size_t at = 0;
    for (int i = 0; i < len && at + 1 < n; i++) {
        buf[at++] = raw[i];
        int left = len - 1 - i;
        if (i >= lead && left > 0 && left % 3 == 0 && at + 1 < n) buf[at++] = ',';
    }
    buf[at] = 0;
    return buf;
}

// --- model detection from key names and shapes ---
static int count_fmt(const st_index *ix, const char *fmt) {
    char n[NAME_MAX_LEN];
    int k = 0;
    while (k < 100000 && st_index_find(ix, name_fmt(n, fmt, k))) k++;
    return k;
}

static int64_t dim_of(const st_index *ix, const char *key, int d) {
    const st_entry *e = st_index_find(ix, key);
    return e && d < e->ndim ? e->shape[d] : -1;
}

static bool has_prefix(const st_index *ix, const char *prefix) {
    size_t pl = strlen(prefix);
    for (int i = 0; i < st_index_count(ix); i++)
        if (!strncmp(st_index_at(ix, i)->name, prefix, pl)) return true;
    return false;
}

static void detect(const st_index *ix, const char *path, char *out, size_t n) {
    char err[512];
    bool proj = has_prefix(ix, "image_proj."), ipa = has_prefix(ix, "ip_adapter.");
    if (proj) {
        ic_adapter_config c;
        if (ic_adapter_config_from_weights(path, &c, err, sizeof err)) {
            snprintf(out, n, "InstantCharacter adapter (sizes unreadable: %s)", err);
            return;
        }
        const ic_projector_config *p = &c.proj;
        bool full = ic_adapter_config_eq(&c, &IC_ADAPTER_FULL) ||
                    (!ipa && ic_projector_config_eq(p, &IC_ADAPTER_FULL.proj));
        snprintf(out, n, "InstantCharacter adapter%s%s: projector width %lld (%d heads x %d), %d+%d blocks, "
                 "resampler %lld x %d layers (%d x %d heads), %lld queries -> %lld; %d IP modules (%d x %d heads)",
                 full ? " (published size)" : "", ipa ? "" : ", projector only", (long long)p->inner_dim, p->heads,
                 p->head_dim, p->num_layers, p->num_layers, (long long)p->dim, p->depth, p->r_heads, p->r_head_dim,
                 (long long)p->num_queries, (long long)p->output_dim, c.n_ip, c.n_ip ? c.ip_heads : 0,
                 c.n_ip ? c.ip_head_dim : 0);
    } else if (ipa) {
        snprintf(out, n, "InstantCharacter IP modules only: %d modules, hidden %lld, ip dim %lld",
                 count_fmt(ix, "ip_adapter.%d.to_k_ip.weight"), (long long)dim_of(ix, "ip_adapter.0.to_k_ip.weight", 0),
                 (long long)dim_of(ix, "ip_adapter.0.to_k_ip.weight", 1));
    } else if (st_index_find(ix, "transformer_blocks.0.attn.to_q.weight") && has_prefix(ix, "single_transformer_blocks.")) {
        snprintf(out, n, "FLUX transformer (diffusers layout): %d double + %d single blocks, hidden %lld, guidance %s",
                 count_fmt(ix, "transformer_blocks.%d.attn.to_q.weight"),
                 count_fmt(ix, "single_transformer_blocks.%d.attn.to_q.weight"),
                 (long long)dim_of(ix, "x_embedder.weight", 0),
                 has_prefix(ix, "time_text_embed.guidance_embedder.") ? "yes (dev)" : "no (schnell)");
    } else if (st_index_find(ix, "double_blocks.0.img_attn.qkv.weight")) {
        snprintf(out, n, "FLUX transformer (BFL single-file layout): %d double + %d single blocks, hidden %lld, guidance %s",
                 count_fmt(ix, "double_blocks.%d.img_attn.qkv.weight"), count_fmt(ix, "single_blocks.%d.linear1.weight"),
                 (long long)dim_of(ix, "img_in.weight", 0), has_prefix(ix, "guidance_in.") ? "yes (dev)" : "no (schnell)");
    } else if (st_index_find(ix, "vision_model.encoder.layers.0.self_attn.q_proj.weight")) {
        bool text = has_prefix(ix, "text_model.");
        snprintf(out, n, "%s vision tower: %d layers, hidden %lld, MLP %lld, patch %lld%s",
                 has_prefix(ix, "vision_model.head.") || dim_of(ix, "vision_model.embeddings.patch_embedding.weight", 2) == 14
                     ? "SigLIP" : "CLIP/SigLIP",
                 count_fmt(ix, "vision_model.encoder.layers.%d.self_attn.q_proj.weight"),
                 (long long)dim_of(ix, "vision_model.encoder.layers.0.self_attn.q_proj.weight", 0),
                 (long long)dim_of(ix, "vision_model.encoder.layers.0.mlp.fc1.weight", 0),
                 (long long)dim_of(ix, "vision_model.embeddings.patch_embedding.weight", 2), text ? " (+ text tower)" : "");
    } else if (st_index_find(ix, "text_model.encoder.layers.0.self_attn.q_proj.weight")) {
        snprintf(out, n, "CLIP text encoder: %d layers, hidden %lld, vocab %lld, positions %lld",
                 count_fmt(ix, "text_model.encoder.layers.%d.self_attn.q_proj.weight"),
                 (long long)dim_of(ix, "text_model.encoder.layers.0.self_attn.q_proj.weight", 0),
                 (long long)dim_of(ix, "text_model.embeddings.token_embedding.weight", 0),
                 (long long)dim_of(ix, "text_model.embeddings.position_embedding.weight", 0));
    } else if (st_index_find(ix, "embeddings.cls_token") && st_index_find(ix, "encoder.layer.0.attention.attention.query.weight")) {
        bool swiglu = st_index_find(ix, "encoder.layer.0.mlp.weights_in.weight") != NULL;
        snprintf(out, n, "DINOv2: %d layers, hidden %lld, %s MLP, position table %lld", count_fmt(ix, "encoder.layer.%d.norm1.weight"),
                 (long long)dim_of(ix, "embeddings.cls_token", 2), swiglu ? "SwiGLU" : "GELU",
                 (long long)dim_of(ix, "embeddings.position_embeddings", 1));
    } else if (st_index_find(ix, "encoder.block.0.layer.0.SelfAttention.q.weight")) {
        snprintf(out, n, "T5 encoder: %d layers, d_model %lld, d_ff %lld, vocab %lld", count_fmt(ix, "encoder.block.%d.layer.0.SelfAttention.q.weight"),
                 (long long)dim_of(ix, "encoder.block.0.layer.0.SelfAttention.q.weight", 1),
                 (long long)dim_of(ix, "encoder.block.0.layer.1.DenseReluDense.wo.weight", 1),
                 (long long)dim_of(ix, "shared.weight", 0));
    } else if (st_index_find(ix, "decoder.conv_in.weight") || st_index_find(ix, "encoder.conv_in.weight")) {
        int64_t lat = dim_of(ix, "decoder.conv_in.weight", 1);
        snprintf(out, n, "VAE (AutoencoderKL): %d levels, %lld latent channels%s", count_fmt(ix, "encoder.down_blocks.%d.resnets.0.conv1.weight"),
                 (long long)(lat > 0 ? lat : dim_of(ix, "encoder.conv_out.weight", 0) / 2),
                 st_index_find(ix, "decoder.conv_in.weight") ? "" : " (encoder only)");
    } else {
        snprintf(out, n, "unknown model (no known key pattern)");
    }
}

static int inspect_index(const char *path, bool quiet) {
    char err[1024], buf[128], c1[32];
    st_index *ix = st_index_open(path, err, sizeof err);
    if (!ix) {
        fprintf(stderr, "cameo inspect: %s\n", err);
        return 1;
    }
    char what[768];
    detect(ix, path, what, sizeof what);
    int64_t total = 0, by_dt[CM_NDTYPES + 1] = {0}, bytes = 0;
    int n = st_index_count(ix);
    for (int i = 0; i < n; i++) {
        const st_entry *e = st_index_at(ix, i);
        int64_t k = numel_of(e->ndim, e->shape);
        total += k;
        by_dt[e->dtype <= CM_NDTYPES ? e->dtype : CM_NDTYPES] += k;
        bytes += (int64_t)e->nbytes;
    }
    printf("%s\n  model: %s\n  tensors: %d   parameters: %s", path, what, n, commas(total, c1, sizeof c1));
    if (total >= 10000000) printf(" (%.3f B)", (double)total / 1e9);
    printf("   data: %.2f MB\n  dtypes:", (double)bytes / 1e6);
    for (int d = 0; d <= CM_NDTYPES; d++)
        if (by_dt[d]) printf(" %s %s", d < CM_NDTYPES ? st_dtype_str((cm_dtype)d) : "other", commas(by_dt[d], c1, sizeof c1));
    printf("\n");
    if (has_prefix(ix, "image_proj.") || has_prefix(ix, "ip_adapter.")) {
        int64_t p = 0, q = 0;
        for (int i = 0; i < n; i++) {
            const st_entry *e = st_index_at(ix, i);
            if (!strncmp(e->name, "image_proj.", 11)) p += numel_of(e->ndim, e->shape);
            if (!strncmp(e->name, "ip_adapter.", 11)) q += numel_of(e->ndim, e->shape);
        }
        printf("  image_proj: %s   ip_adapter: %s\n", commas(p, c1, sizeof c1), commas(q, buf, sizeof buf));
    }
    if (!quiet) {
        for (int i = 0; i < n; i++) {
            const st_entry *e = st_index_at(ix, i);
            printf("  %-64s %-5s %-22s %lld\n", e->name, e->dtype_str, shape_str(e->ndim, e->shape, buf, sizeof buf),
                   (long long)numel_of(e->ndim, e->shape));
        }
    }
    st_index_close(ix);
    return 0;
}

// A folder that is not one checkpoint (e.g. a diffusers pipeline root): inspect what it holds.
static int inspect_folder(const char *path, bool quiet, const char *first_err) {
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "cameo inspect: %s\n", first_err);
        return 1;
    }
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    // sorted, for a stable listing
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j]; names[j] = names[j - 1]; names[j - 1] = t;
        }
    int found = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        char sub[4096], err[1024];
        snprintf(sub, sizeof sub, "%s/%s", path, names[i]);
        struct stat st;
        size_t l = strlen(names[i]);
        bool is_st = l > 12 && !strcmp(names[i] + l - 12, ".safetensors");
        if (stat(sub, &st) || (!S_ISDIR(st.st_mode) && !is_st)) continue;
        if (S_ISDIR(st.st_mode)) {  // a component folder (transformer/, vae/, ...) with one checkpoint
            st_index *ix = st_index_open(sub, err, sizeof err);
            if (!ix) continue;
            st_index_close(ix);
        }
        found++;
        rc |= inspect_index(sub, quiet);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (!found) {
        fprintf(stderr, "cameo inspect: %s\n", first_err);
        return 1;
    }
    return rc;
}

static int inspect_path(const char *path, bool quiet) {
    char err[1024];
    st_index *ix = st_index_open(path, err, sizeof err);
    if (ix) {
        st_index_close(ix);
        return inspect_index(path, quiet);
    }
    struct stat st;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) return inspect_folder(path, quiet, err);
    fprintf(stderr, "cameo inspect: %s\n", err);
    return 1;
}

// the per-key lines of a meta registry
static void print_keys(const cm_params *meta) {
    char buf[128];
    for (int i = 0; i < meta->n; i++) {
        const cm_tensor *k = meta->items[i].t;
        printf("  %-64s %-22s %lld\n", meta->items[i].name, shape_str(k->ndim, k->shape, buf, sizeof buf),
               (long long)tensor_numel(k));
    }
}

static int arch_instantcharacter(const ic_adapter_config *c, const char *name, bool quiet) {
    cm_params meta;
    char err[512], a[32], b[32], t[32];
    params_init_meta(&meta, CM_BF16);  // the published dtype
    if (ic_adapter_describe(c, &meta, err, sizeof err)) {
        fprintf(stderr, "cameo inspect: %s\n", err);
        params_free(&meta);
        return 1;
    }
    int64_t proj = ic_params_count_prefix(&meta, "image_proj."), ip = ic_params_count_prefix(&meta, "ip_adapter.");
    printf("%s (nothing allocated)\n  tensors: %d   parameters: %s", name, meta.n, commas(proj + ip, t, sizeof t));
    if (proj + ip >= 10000000) printf(" (%.3f B)   bf16: %.2f GB", (double)(proj + ip) / 1e9, 2.0 * (double)(proj + ip) / 1e9);
    printf("\n  image_proj: %s   ip_adapter: %s (%d modules)\n", commas(proj, a, sizeof a), commas(ip, b, sizeof b), c->n_ip);
    if (!quiet) print_keys(&meta);
    params_free(&meta);
    return 0;
}

static int inspect_arch(const char *name, bool quiet) {
    char c1[32];
    if (!strcmp(name, "instantcharacter")) return arch_instantcharacter(&IC_ADAPTER_FULL, name, quiet);
    if (!strcmp(name, "instantcharacter-tiny")) return arch_instantcharacter(&IC_ADAPTER_TINY, name, quiet);
    if (!strcmp(name, "flux-dev")) {
        flux_config fc = flux_config_dev();
        cm_params meta;
        char err[512];
        params_init_meta(&meta, CM_BF16);
        if (flux_describe(&fc, &meta, err, sizeof err)) {
            fprintf(stderr, "cameo inspect: %s\n", err);
            params_free(&meta);
            return 1;
        }
        int64_t n = params_count(&meta, false);
        printf("flux-dev (FLUX.1-dev transformer, diffusers names, nothing allocated)\n  %d double + %d single blocks, "
               "%d heads x %d\n  tensors: %d   parameters: %s (%.3f B)   bf16: %.2f GB\n", fc.num_layers,
               fc.num_single_layers, fc.heads, fc.head_dim, meta.n, commas(n, c1, sizeof c1), (double)n / 1e9,
               2.0 * (double)n / 1e9);
        if (n != flux_param_count(&fc)) printf("  (flux_param_count says %lld)\n", (long long)flux_param_count(&fc));
        if (!quiet) print_keys(&meta);
        params_free(&meta);
        return 0;
    }
    if (!strcmp(name, "siglip-so400m")) {
        const siglip_config *c = &SIGLIP_SO400M_P14_384;
        int64_t n = siglip_param_count(c);
        printf("siglip-so400m (google/siglip-so400m-patch14-384 vision tower, nothing allocated)\n"
               "  %lld layers, hidden %lld, %lld heads, MLP %lld, patch %lld at %lld\n  parameters: %s (%.3f B)\n",
               (long long)c->layers, (long long)c->hidden, (long long)c->heads, (long long)c->mlp, (long long)c->patch,
               (long long)c->image_size, commas(n, c1, sizeof c1), (double)n / 1e9);
        return 0;
    }
    if (!strcmp(name, "dinov2-giant")) {
        const dino_config *c = &DINOV2_GIANT;
        int64_t n = dino_param_count(c);
        printf("dinov2-giant (facebook/dinov2-giant, nothing allocated)\n"
               "  %lld layers, hidden %lld, %lld heads, %s MLP %lld, patch %lld at %lld\n  parameters: %s (%.3f B)\n",
               (long long)c->layers, (long long)c->hidden, (long long)c->heads, c->swiglu ? "SwiGLU" : "GELU",
               (long long)c->mlp_hidden, (long long)c->patch, (long long)c->image_size, commas(n, c1, sizeof c1),
               (double)n / 1e9);
        return 0;
    }
    if (!strcmp(name, "t5-xxl")) {
        const t5_config *c = &T5_V11_XXL;
        int64_t n = t5_param_count(c);
        printf("t5-xxl (google/t5-v1_1-xxl encoder, FLUX's text_encoder_2, nothing allocated)\n"
               "  %lld layers, d_model %lld, %lld heads x %lld, d_ff %lld, vocab %lld\n  parameters: %s (%.3f B)\n",
               (long long)c->layers, (long long)c->d_model, (long long)c->heads, (long long)c->d_kv, (long long)c->d_ff,
               (long long)c->vocab, commas(n, c1, sizeof c1), (double)n / 1e9);
        return 0;
    }
    if (!strcmp(name, "clip-l")) {
        const clip_text_config *c = &CLIP_VIT_L14_TEXT;
        int64_t n = clip_text_param_count(c);
        printf("clip-l (openai/clip-vit-large-patch14 text tower, FLUX's text_encoder, nothing allocated)\n"
               "  %lld layers, hidden %lld, %lld heads, MLP %lld, %lld positions, vocab %lld\n  parameters: %s (%.3f B)\n",
               (long long)c->layers, (long long)c->hidden, (long long)c->heads, (long long)c->mlp, (long long)c->max_pos,
               (long long)c->vocab, commas(n, c1, sizeof c1), (double)n / 1e9);
        return 0;
    }
    if (!strcmp(name, "flux-vae")) {
        const vae_config *c = &VAE_FLUX;
        int64_t ne = vae_encoder_param_count(c), nd = vae_decoder_param_count(c);
        printf("flux-vae (FLUX.1-dev AutoencoderKL, nothing allocated)\n  %lld latent channels, %d levels, scaling %g, shift %g\n"
               "  encoder: %s parameters   decoder: ", (long long)c->latent, c->nlevels, c->scaling, c->shift, commas(ne, c1, sizeof c1));
        printf("%s parameters\n", commas(nd, c1, sizeof c1));
        return 0;
    }
    fprintf(stderr, "cameo inspect: unknown architecture '%s' (allowed: instantcharacter, instantcharacter-tiny, flux-dev, "
                    "flux-vae, siglip-so400m, dinov2-giant, t5-xxl, clip-l)\n", name);
    usage(stderr);
    return 2;
}

int inspect_cli(int argc, char **argv) {
    const char *arch = NULL, *path = NULL;
    bool quiet = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--arch")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cameo inspect: --arch needs a name\n");
                usage(stderr);
                return 2;
            }
            arch = argv[++i];
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            quiet = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "cameo inspect: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!!arch == !!path) {
        usage(stderr);
        return 2;
    }
    return arch ? inspect_arch(arch, quiet) : inspect_path(path, quiet);
}

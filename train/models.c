// models.c — builds the model bundle: tiny random presets or the published weights.
#include "train/models.h"
#include <stdio.h>
#include <string.h>
#include "autograd/alloc.h"
#include "kernels/backend.h"
#include "models/clip_text.h"
#include "models/t5.h"
#ifdef CAMEO_HAVE_CUDA
const char *cuda_unavailable_reason(void);  // kernels/cuda/cuda_backend.cu
#endif
#include "train/checkpoint.h"
#include "train/torch_import.h"

// zero every to_v_ip: the IP branch then adds nothing and the frozen FLUX starts unperturbed
static void zero_v(ic_models *m) {
    for (int i = 0; i < m->ps_adapter.n; i++) {
        cm_param *p = &m->ps_adapter.items[i];
        if (strstr(p->name, ".to_v_ip.")) {
            const cm_backend *be = backend_get(m->dev.type);
            be->fill(backend_ctx(m->dev), p->t->dtype, tensor_data(p->t), tensor_numel(p->t), 0.0);
        }
    }
}

// the shallow layers of the feature assembly: InstantCharacter's (SigLIP 7, 13, 26; DINOv2 9, 19,
// 29) for the published towers, thirds of the depth for other sizes
static vision_feat_config shallow_layers(int64_t sig_layers, int64_t dino_layers) {
    if (sig_layers == SIGLIP_SO400M_P14_384.layers && dino_layers == DINOV2_GIANT.layers) return VISION_FEAT_IC;
    vision_feat_config v = {.n_shallow = 3};
    for (int k = 0; k < 3; k++) {
        int64_t ls = (k + 1) * sig_layers / 3, ld = (k + 1) * dino_layers / 3;
        v.siglip_layers[k] = ls < 1 ? 1 : (int)ls;
        v.dino_layers[k] = ld < 1 ? 1 : (int)ld;
    }
    return v;
}

int ic_models_vision_shape(const train_tiny_dims *tiny, const char *siglip, const char *dinov2, int ref_size, int64_t *tokens,
                           int64_t *width, vision_feat_config *vfc, int *side, char *err, size_t errlen) {
    if (tiny) {  // as ic_models_init_tiny: both towers tiny->vision_hidden wide, views of vision_image px
        int64_t g = tiny->vision_image / tiny->vision_patch;
        *tokens = g * g, *width = 2 * (int64_t)tiny->vision_hidden, *side = tiny->vision_image;
        *vfc = shallow_layers(tiny->vision_layers, tiny->vision_layers);
        return 0;
    }
    siglip_config sc;
    dino_config dc;
    if (siglip_detect(siglip, &sc, err, errlen) || dino_detect(dinov2, &dc, err, errlen)) return -1;
    int64_t g = sc.image_size / sc.patch;
    *tokens = g * g, *width = sc.hidden + dc.hidden, *side = ref_size ? ref_size : (int)sc.image_size;
    *vfc = shallow_layers(sc.layers, dc.layers);
    return 0;
}

int ic_models_load_adapter_file(ic_models *m, const char *path, char *err, size_t errlen) {
    // a checkpoint's adapter.safetensors given by path (what a new run from it names): checked
    // against its folder's manifest as the folder itself is, not trained on if damaged
    if (ckpt_verify_member(path, err, errlen)) return -1;
    if (torch_import_is_torch_file(path)) {  // the released PyTorch file (or an export's .bin / .pt), read directly
        cm_params *regs[1] = {&m->ps_adapter};
        int extra;
        return torch_import_load(regs, 1, path, false, &extra, err, errlen);
    }
    return ic_adapter_load(&m->ps_adapter, path, false, err, errlen);
}

int ic_adapter_file_into(cm_params *ps, const char *path, char *err, size_t errlen) {
    int extra;  // (its one caller reads the file just after ic_models_load_adapter_file verified it)
    if (torch_import_is_torch_file(path)) {
        cm_params *regs[1] = {ps};
        return torch_import_load(regs, 1, path, false, &extra, err, errlen);
    }
    return params_load(ps, path, NULL, false, &extra, err, errlen);
}

static int adapter_setup(ic_models *m, const ic_adapter_config *ac, const char *init_kv, const char *init_path,
                         uint64_t seed, char *err, size_t errlen) {
    m->ad_cfg = *ac;
    params_init_registry(&m->ps_adapter, m->dev, m->dtype, true);
    if (ic_adapter_init(&m->adapter, &m->ad_cfg, &m->ps_adapter, err, errlen)) return -1;
    params_randomize(&m->ps_adapter, seed ^ 0xada);
    if (init_path && *init_path) return ic_models_load_adapter_file(m, init_path, err, errlen);
    if (init_kv && !strcmp(init_kv, "zero_v")) zero_v(m);
    else if (init_kv && strcmp(init_kv, "default")) {
        snprintf(err, errlen, "adapter.init_kv: '%s' is not one of zero_v, default", init_kv);
        return -1;
    }
    return 0;
}

int ic_models_text(ic_text *t, const train_tiny_dims *tiny, uint64_t seed, const char *t5, const char *clip, int t5_len, int text,
                   cm_device dev, cm_dtype dt, char *err, size_t errlen) {
    cm_device tdev = text == IC_TEXT_CPU ? CM_DEV_CPU : dev;
    cm_dtype tdt = text == IC_TEXT_CPU ? CM_F32 : dt;
    if (tiny && text == IC_TEXT_NONE) return ic_text_init_none(t, tiny->text_dim, tiny->pooled_dim, tiny->text_len), 0;
    if (tiny) return ic_text_init_tiny(t, tiny->text_dim, tiny->pooled_dim, tiny->text_len, seed ^ 0x7e, tdev, tdt, err, errlen);
    if (t5_len <= 0) t5_len = 512;
    if (text != IC_TEXT_NONE) return ic_text_load(t, t5, clip, t5_len, tdev, tdt, err, errlen);
    t5_config c5;
    clip_text_config cc;
    if (t5_detect(t5, &c5, err, errlen) || clip_text_detect(clip, &cc, err, errlen)) return -1;
    ic_text_init_none(t, c5.d_model, cc.hidden, t5_len);
    return 0;
}

// the tiny towers: SigLIP at the reference size, DINOv2 trained one patch larger so its position
// table is resized as the real one is (37x37 -> 27x27)
static void tiny_towers(ic_models *m, const train_tiny_dims *d, uint64_t seed) {
    siglip_config sc = {.hidden = d->vision_hidden, .layers = d->vision_layers, .heads = d->vision_heads,
                        .mlp = 2 * d->vision_hidden, .patch = d->vision_patch, .image_size = d->vision_image, .channels = 3, .eps = 1e-6};
    dino_config dc = {.hidden = d->vision_hidden, .layers = d->vision_layers, .heads = d->vision_heads,
                      .mlp_hidden = dino_swiglu_hidden(d->vision_hidden, 4.0), .patch = d->vision_patch,
                      .image_size = d->vision_image + d->vision_patch, .channels = 3, .swiglu = true, .eps = 1e-6};
    params_init_registry(&m->ps_vision, m->dev, m->dtype, false);
    params_init_registry(&m->ps_dino, m->dev, m->dtype, false);
    siglip_init(&m->sig, &sc, &m->ps_vision);
    dino_init(&m->dino, &dc, &m->ps_dino);
    params_randomize(&m->ps_vision, seed ^ 0x515);
    params_randomize(&m->ps_dino, seed ^ 0xd1);
    m->vfc = shallow_layers(sc.layers, dc.layers);
    m->ref_size = d->vision_image;
}

// the published towers of the detected configs sc, dc, taking views of side px
static int load_towers(ic_models *m, const siglip_config *sc, const dino_config *dc, const char *siglip, const char *dinov2, int side,
                       char *err, size_t errlen) {
    int n_extra;
    params_init_registry(&m->ps_vision, m->dev, m->dtype, false);
    siglip_init(&m->sig, sc, &m->ps_vision);
    if (params_load(&m->ps_vision, siglip, NULL, false, &n_extra, err, errlen)) return -1;
    params_init_registry(&m->ps_dino, m->dev, m->dtype, false);
    dino_init(&m->dino, dc, &m->ps_dino);
    if (params_load(&m->ps_dino, dinov2, NULL, false, &n_extra, err, errlen)) return -1;
    m->vfc = shallow_layers(sc->layers, dc->layers);
    m->ref_size = side;
    return 0;
}

// a bundle with nothing loaded yet, for dev in dt
static void models_begin(ic_models *m, cm_device dev, cm_dtype dt, bool tiny) {
    memset(m, 0, sizeof *m);
    m->dev = dev;
    m->dtype = dt;
    m->tiny = tiny;
}

int ic_models_vision(ic_models *m, const train_tiny_dims *tiny, uint64_t seed, const char *siglip, const char *dinov2, int ref_size,
                     cm_device dev, cm_dtype dt, char *err, size_t errlen) {
    models_begin(m, dev, dt, tiny != NULL);
    if (tiny) return tiny_towers(m, tiny, seed), 0;
    siglip_config sc;
    dino_config dc;
    if (siglip_detect(siglip, &sc, err, errlen) || dino_detect(dinov2, &dc, err, errlen)) return -1;
    return load_towers(m, &sc, &dc, siglip, dinov2, ref_size ? ref_size : (int)sc.image_size, err, errlen);  // ic_models_vision_shape's side
}

// the VAE encoder: the tiny preset's three levels (4x down) with FLUX's scaling and shift, of seed
static void tiny_vae(ic_models *m, const train_tiny_dims *d, uint64_t seed) {
    vae_config vc = {.in_channels = 3, .out_channels = 3, .latent = d->latent_channels, .nlevels = IC_TINY_VAE_LEVELS,
                     .ch = {d->vae_channels / 2, d->vae_channels, d->vae_channels}, .layers_per_block = 1,
                     .groups = 4, .mid_attn = true, .scaling = 0.3611, .shift = 0.1159};
    params_init_registry(&m->ps_vae, m->dev, m->dtype, false);
    vae_encoder_init(&m->vae, &vc, &m->ps_vae);
    params_randomize(&m->ps_vae, seed ^ 0xae);
    m->vae_factor = 1 << (vc.nlevels - 1);
}

// the VAE encoder of vc from path (the decoder's weights passed over)
static int load_vae(ic_models *m, const vae_config *vc, const char *path, char *err, size_t errlen) {
    int n_extra;
    params_init_registry(&m->ps_vae, m->dev, m->dtype, false);
    vae_encoder_init(&m->vae, vc, &m->ps_vae);
    if (params_load(&m->ps_vae, path, NULL, false, &n_extra, err, errlen)) return -1;
    m->vae_factor = 1 << (vc->nlevels - 1);
    return 0;
}

int ic_models_vae(ic_models *m, const train_tiny_dims *tiny, uint64_t seed, const char *vae, cm_device dev, cm_dtype dt, char *err,
                  size_t errlen) {
    models_begin(m, dev, dt, tiny != NULL);
    if (tiny) return tiny_vae(m, tiny, seed), 0;
    vae_config vc;
    return vae_detect(vae, &vc, err, errlen) || load_vae(m, &vc, vae, err, errlen) ? -1 : 0;
}

int ic_models_init_tiny(ic_models *m, const train_tiny_dims *d, cm_device dev, cm_dtype dt, int text, uint64_t seed,
                        const char *init_kv, char *err, size_t errlen) {
    models_begin(m, dev, dt, true);
    m->ref_size = d->vision_image;

    flux_config fc = flux_config_tiny();
    fc.num_layers = d->flux_double;
    fc.num_single_layers = d->flux_single;
    fc.heads = d->flux_heads;
    fc.head_dim = d->flux_head_dim;
    flux_default_axes(d->flux_head_dim, fc.axes_dim);  // as detection assumes for published weights
    fc.joint_dim = d->text_dim;
    fc.pooled_dim = d->pooled_dim;
    fc.in_channels = fc.out_channels = 4 * d->latent_channels;
    m->flux_cfg = fc;
    params_init_registry(&m->ps_flux, m->dev, m->dtype, false);
    if (flux_init(&m->flux, &m->flux_cfg, &m->ps_flux, err, errlen)) return -1;
    params_randomize(&m->ps_flux, seed ^ 0xf1);

    tiny_towers(m, d, seed);

    tiny_vae(m, d, seed);

    if (ic_models_text(&m->text, d, seed, NULL, NULL, 0, text, dev, dt, err, errlen)) return -1;

    // adapter: the projector's width is the towers' concatenated width; its blocks use heads of
    // proj_head_dim, the resampler proj_heads x proj_head_dim; one IP module per FLUX block
    ic_adapter_config ac = IC_ADAPTER_TINY;
    ac.proj.inner_dim = ac.proj.embedding_dim = ac.proj.cross_dim = 2 * (int64_t)d->vision_hidden;
    ac.proj.head_dim = d->proj_head_dim;
    ac.proj.heads = (int)(ac.proj.inner_dim / d->proj_head_dim);
    ac.proj.num_layers = d->proj_layers;
    ac.proj.r_heads = d->proj_heads;
    ac.proj.r_head_dim = d->proj_head_dim;
    ac.proj.dim = (int64_t)d->proj_heads * d->proj_head_dim;
    ac.proj.depth = d->proj_depth;
    ac.proj.num_queries = d->proj_queries;
    ac.proj.output_dim = d->text_dim;
    ac.n_ip = fc.num_layers + fc.num_single_layers;
    ac.ip_heads = fc.heads;
    ac.ip_head_dim = fc.head_dim;
    return adapter_setup(m, &ac, init_kv, NULL, seed, err, errlen);
}

// The parts must fit one another: each width one model hands the next, checked from the headers
// before anything is read, so a mismatched folder names both files instead of failing inside the
// first forward (or reading past the IP modules when the adapter has fewer than FLUX's blocks).
static int models_fit(const ic_model_paths *p, const flux_config *fc, const siglip_config *sc, const dino_config *dc,
                      const vae_config *vc, const t5_config *c5, const clip_text_config *cc, const ic_adapter_config *ac,
                      char *err, size_t errlen) {
    const char *ad = p->adapter_init && *p->adapter_init ? p->adapter_init : "the new adapter (sized as the published one)";
    int64_t blocks = (int64_t)fc->num_layers + fc->num_single_layers;
#define FIT(cond, ...) do { if (!(cond)) { snprintf(err, errlen, __VA_ARGS__); return -1; } } while (0)
    FIT(4 * vc->latent == fc->in_channels, "the VAE %s makes %lld latent channels, packed 2x2 = %lld, but the FLUX transformer %s "
        "takes %d input channels", p->vae, (long long)vc->latent, 4 * (long long)vc->latent, p->flux, fc->in_channels);
    FIT(c5->d_model == fc->joint_dim, "the T5 encoder %s is %lld wide, but the FLUX transformer %s takes %d-wide text tokens "
        "(context_embedder)", p->t5, (long long)c5->d_model, p->flux, fc->joint_dim);
    FIT(cc->hidden == fc->pooled_dim, "the CLIP text encoder %s pools %lld wide, but the FLUX transformer %s takes a %d-wide "
        "pooled prompt (time_text_embed.text_embedder)", p->clip, (long long)cc->hidden, p->flux, fc->pooled_dim);
    FIT(sc->hidden + dc->hidden == ac->proj.inner_dim, "the adapter %s reads %lld-wide vision features, but SigLIP %s (%lld) and "
        "DINOv2 %s (%lld) make %lld", ad, (long long)ac->proj.inner_dim, p->siglip, (long long)sc->hidden, p->dinov2,
        (long long)dc->hidden, (long long)(sc->hidden + dc->hidden));
    FIT(ac->n_ip == blocks, "the adapter %s has %d IP modules, but the FLUX transformer %s has %lld blocks (%d double + %d single): "
        "one module per block", ad, ac->n_ip, p->flux, (long long)blocks, fc->num_layers, fc->num_single_layers);
    FIT(ac->ip_heads == fc->heads && ac->ip_head_dim == fc->head_dim, "the adapter %s's IP modules use %d heads x %d, but the "
        "FLUX transformer %s attends with %d x %d (the IP attention shares its queries)", ad, ac->ip_heads, ac->ip_head_dim,
        p->flux, fc->heads, fc->head_dim);
#undef FIT
    return 0;
}

int ic_models_load(ic_models *m, const ic_model_paths *p, cm_device dev, cm_dtype dt, int text, const char *init_kv,
                   uint64_t seed, char *err, size_t errlen) {
    models_begin(m, dev, dt, false);
    flux_layout lay;
    siglip_config sc;
    dino_config dc;
    vae_config vc;
    // every model's size from its header first: a wrong path fails before FLUX's ~24 GB are read
    t5_config c5;
    clip_text_config cc;
    ic_adapter_config ac = IC_ADAPTER_FULL;
    size_t ln = p->adapter_init ? strlen(p->adapter_init) : 0;
    bool bin = ln && torch_import_is_torch_file(p->adapter_init);  // a torch.save file: the released full size
    if (flux_config_from_weights(p->flux, &m->flux_cfg, &lay, err, errlen) || siglip_detect(p->siglip, &sc, err, errlen) ||
        dino_detect(p->dinov2, &dc, err, errlen) || vae_detect(p->vae, &vc, err, errlen) || t5_detect(p->t5, &c5, err, errlen) ||
        clip_text_detect(p->clip, &cc, err, errlen) || (ln && !bin && ic_adapter_config_from_weights(p->adapter_init, &ac, err, errlen)) ||
        models_fit(p, &m->flux_cfg, &sc, &dc, &vc, &c5, &cc, &ac, err, errlen))
        return -1;
    // the reference views: a side the SigLIP tower's fixed patch grid takes (its position table
    // has no interpolation; DINOv2's is interpolated to the same grid)
    int64_t grid = sc.image_size / sc.patch, rs = p->ref_size ? p->ref_size : sc.image_size;
    if (rs / sc.patch != grid) {
        snprintf(err, errlen, "data.ref_size %lld: the SigLIP tower %s takes %lld..%lld px views (a %lld x %lld grid of %lld px "
                 "patches; InstantCharacter uses %lld)", (long long)rs, p->siglip, (long long)(grid * sc.patch),
                 (long long)(grid * sc.patch + sc.patch - 1), (long long)grid, (long long)grid, (long long)sc.patch,
                 (long long)sc.image_size);
        return -1;
    }
    params_init_registry(&m->ps_flux, m->dev, m->dtype, false);
    if (flux_init(&m->flux, &m->flux_cfg, &m->ps_flux, err, errlen) || flux_load(&m->flux, &m->ps_flux, p->flux, err, errlen)) return -1;

    if (p->no_towers) m->vfc = shallow_layers(sc.layers, dc.layers), m->ref_size = (int)rs;  // their files' headers only
    else if (load_towers(m, &sc, &dc, p->siglip, p->dinov2, (int)rs, err, errlen)) return -1;

    if (load_vae(m, &vc, p->vae, err, errlen)) return -1;

    if (ic_models_text(&m->text, NULL, seed, p->t5, p->clip, p->t5_len, text, dev, dt, err, errlen)) return -1;
    return adapter_setup(m, &ac, init_kv, p->adapter_init, seed, err, errlen);
}

void ic_models_drop_towers(ic_models *m) {
    siglip_free(&m->sig);
    dino_free(&m->dino);
    params_free(&m->ps_vision);
    params_free(&m->ps_dino);
    alloc_empty_cache(m->dev);  // the weights' blocks back to the device, not kept in the cache for other sizes
}

void ic_models_free(ic_models *m) {
    flux_free(&m->flux);
    siglip_free(&m->sig);
    dino_free(&m->dino);
    vae_encoder_free(&m->vae);
    ic_adapter_free(&m->adapter);
    ic_text_free(&m->text);
    params_free(&m->ps_flux);
    params_free(&m->ps_vision);
    params_free(&m->ps_dino);
    params_free(&m->ps_vae);
    params_free(&m->ps_adapter);
}

int ic_device_check(cm_device dev, const char *what, char *err, size_t errlen) {
    if (dev.type != CM_CUDA || cm_cuda_backend) return 0;
    char name[32];
#ifdef CAMEO_HAVE_CUDA
    const char *why = cuda_unavailable_reason() ? cuda_unavailable_reason() : "no usable CUDA device";
#else
    const char *why = "this cameo was built without CUDA (configure with -DCAMEO_CUDA=ON where nvcc is installed)";
#endif
    cm_seterr(err, errlen, "%s: '%s' — %s", what, device_name(dev, name, sizeof name), why);
    return -1;
}

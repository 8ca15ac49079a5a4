// ic_adapter.h — the whole trainable InstantCharacter adapter: the image projector
// (ic_projector.h, keys image_proj.*) and one IP attention module per FLUX attention layer
// (models/ip_attn.h, keys ip_adapter.{i}.*), exactly the published checkpoint (spec §3):
// 2,794,932,864 parameters at full size.
// defines: ic_adapter_config, ic_adapter and the ic_adapter_* functions.
#pragma once
#include "models/ic_projector.h"

struct ip_attn;

typedef struct ic_adapter_config {
    ic_projector_config proj;
    int n_ip;         // IP modules: FLUX double + single blocks (57)
    int ip_heads;     // 24
    int ip_head_dim;  // 128; hidden = ip_heads * ip_head_dim = FLUX width (3072)
    // the IP modules read the projector's tokens: ip_dim = proj.output_dim (4096)
} ic_adapter_config;

extern const ic_adapter_config IC_ADAPTER_FULL;  // 1,360,116,096 + 1,434,816,768
extern const ic_adapter_config IC_ADAPTER_TINY;  // IC_PROJECTOR_TINY + 3 modules of 2 x 16
int ic_adapter_config_check(const ic_adapter_config *c, char *err, size_t errlen);
bool ic_adapter_config_eq(const ic_adapter_config *a, const ic_adapter_config *b);

typedef struct ic_adapter {
    ic_adapter_config cfg;
    ic_projector proj;
    struct ip_attn *ip;  // NULL when cfg.n_ip == 0
} ic_adapter;

// Registers image_proj.* then ip_adapter.{i}.* in ps (make ps trainable). 0, or -1 with err set.
int ic_adapter_init(ic_adapter *a, const ic_adapter_config *c, cm_params *ps, char *err, size_t errlen);
void ic_adapter_free(ic_adapter *a);  // the weights belong to ps (params_free)

// Every key and shape of the adapter in a meta registry (made by the caller with
// params_init_meta): exactly what a real init registers, nothing allocated.
int ic_adapter_describe(const ic_adapter_config *c, cm_params *meta, char *err, size_t errlen);
// parameters whose name starts with prefix (NULL = all); works on meta registries too
int64_t ic_params_count_prefix(const cm_params *ps, const char *prefix);

// Reads the sizes from the tensor shapes of an adapter file / folder (keys image_proj.*, and
// ip_adapter.* when present, else n_ip = 0). Head splits are not in the shapes: they come from
// the metadata keys "ic.head_dim", "ic.resampler_head_dim" (written by cameo) or default to the
// published 64 / 64; the IP head size is the length of norm_ip_q.scale. 0, or -1 with err set.
int ic_adapter_config_from_weights(const char *path, ic_adapter_config *c, char *err, size_t errlen);
// Loads an adapter file into a model made by ic_adapter_init. strict: extra keys are an error.
int ic_adapter_load(cm_params *ps, const char *path, bool strict, char *err, size_t errlen);

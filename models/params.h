// params.h — a model's named weights: the registry every model fills at construction, that
// loading, initialisation, checkpointing and the optimizer walk.
// defines: cm_param, cm_params, params_* functions.
#pragma once
#include <stdbool.h>
#include "autograd/tensor.h"

typedef enum { CM_INIT_ZEROS = 0, CM_INIT_ONES, CM_INIT_NORMAL, CM_INIT_LINEAR_DEFAULT } cm_init;

typedef struct cm_param {
    char name[160];       // the published key, e.g. "image_proj.latents", "transformer_blocks.0.attn.to_q.weight"
    cm_tensor *t;
    bool trainable;
    bool frozen;          // trainable, but held fixed this run (adapter.freeze): no gradient, no optimizer
                          // state; still saved, loaded and exported with the trained weights
    cm_init init;         // how params_init fills it
    double init_std;      // for CM_INIT_NORMAL
} cm_param;

typedef struct cm_params {
    cm_param *items;
    int n, cap;
    cm_device dev;
    cm_dtype dtype;       // dtype new parameters are made with
    bool trainable;       // default for new parameters
    bool meta;            // names and shapes only, no memory (architecture listing, param counts)
    // facts the shapes do not carry (e.g. head splits), written as safetensors metadata with the weights
    struct { char key[48], value[48]; } info[8];
    int n_info;
} cm_params;

void params_init_registry(cm_params *ps, cm_device dev, cm_dtype dt, bool trainable);
// a registry that records names and shapes without allocating (for full-size listings)
void params_init_meta(cm_params *ps, cm_dtype dt);
// creates (zeros) and registers a parameter named "<prefix>.<name>" (prefix may be NULL/"")
cm_tensor *params_new(cm_params *ps, const char *prefix, const char *name, int ndim, const int64_t *shape, cm_init init);
cm_tensor *params_find(const cm_params *ps, const char *name);  // NULL when absent
// registers an existing tensor under name (retained; params_free releases it), e.g. a view of
// other memory for params_load to fill
void params_add(cm_params *ps, const char *name, cm_tensor *t);
int64_t params_count(const cm_params *ps, bool trainable_only);
// fills every parameter by its init rule, deterministically from seed and the parameter's name
void params_randomize(cm_params *ps, uint64_t seed);
void params_set_trainable(cm_params *ps, bool trainable);  // also sets requires_grad
// holds fixed every trainable parameter named `prefix` or `prefix.…` (frozen, requires_grad off);
// returns how many it matched
int params_freeze_prefix(cm_params *ps, const char *prefix);
// records key = value (replacing an earlier value) for the metadata of every file the weights are saved to
void params_set_info(cm_params *ps, const char *key, const char *value);
void params_free(cm_params *ps);
// loads weights by name from a safetensors file, a folder of them, or a diffusers index JSON.
// strip: a prefix removed from file keys first (NULL for none). Missing or misshapen tensors are
// errors naming key, expected and found shape; extra file keys are counted (*n_extra) and ignored
// unless strict. Converts bf16/f16/f32 to the parameter's dtype. Returns 0 or -1 with err set.
int params_load(cm_params *ps, const char *path, const char *strip, bool strict, int *n_extra, char *err, size_t errlen);
// writes every (or every trainable) parameter to a safetensors file atomically, as dtype dt
int params_save(const cm_params *ps, const char *path, bool trainable_only, cm_dtype dt, char *err, size_t errlen);

// flux_config.c — FLUX configurations (full FLUX.1-dev and the tiny test size) and the
// parameter count of an architecture, computed without allocating it.
#include <stdio.h>
#include "models/flux.h"

flux_config flux_config_dev(void) {
    return (flux_config){.in_channels = 64, .out_channels = 64, .num_layers = 19, .num_single_layers = 38,
                         .heads = 24, .head_dim = 128, .joint_dim = 4096, .pooled_dim = 768,
                         .guidance_embeds = true, .axes_dim = {16, 56, 56}, .theta = 10000.0, .mlp_ratio = 4};
}

// Same code path as dev: 2 double + 2 single blocks (so block-to-block hand-over of both streams
// is exercised), 2 heads x 16, 4 latent channels packed to 16.
flux_config flux_config_tiny(void) {
    return (flux_config){.in_channels = 16, .out_channels = 16, .num_layers = 2, .num_single_layers = 2,
                         .heads = 2, .head_dim = 16, .joint_dim = 32, .pooled_dim = 16,
                         .guidance_embeds = true, .axes_dim = {4, 6, 6}, .theta = 10000.0, .mlp_ratio = 4};
}

int64_t flux_config_hidden(const flux_config *c) { return (int64_t)c->heads * c->head_dim; }

void flux_default_axes(int head_dim, int axes[3]) {
    axes[1] = axes[2] = 2 * (7 * head_dim / 32);
    axes[0] = head_dim - 2 * axes[1];
}

int64_t flux_param_count(const flux_config *c) {
    const int64_t C = flux_config_hidden(c), D = c->head_dim, F = C * c->mlp_ratio;
#define LIN(i, o) ((int64_t)(i) * (o) + (o))
    int64_t emb = LIN(256, C) + LIN(C, C)                            // timestep_embedder
                  + (c->guidance_embeds ? LIN(256, C) + LIN(C, C) : 0)  // guidance_embedder
                  + LIN(c->pooled_dim, C) + LIN(C, C)                // text_embedder
                  + LIN(c->joint_dim, C) + LIN(c->in_channels, C);   // context_embedder, x_embedder
    int64_t dbl = 2 * LIN(C, 6 * C)                                  // norm1, norm1_context
                  + 8 * LIN(C, C)                                    // q,k,v,out for both streams
                  + 4 * D                                            // four q/k RMSNorms
                  + 2 * (LIN(C, F) + LIN(F, C));                     // ff, ff_context
    int64_t sgl = LIN(C, 3 * C) + 3 * LIN(C, C) + 2 * D + LIN(C, F) + LIN(C + F, C);
    int64_t out = LIN(C, 2 * C) + LIN(C, c->out_channels);
#undef LIN
    return emb + dbl * c->num_layers + sgl * c->num_single_layers + out;
}

int flux_config_check(const flux_config *c, char *err, size_t errlen) {
    const char *bad = NULL;
    if (c->in_channels <= 0) bad = "in_channels must be > 0";
    else if (c->out_channels <= 0) bad = "out_channels must be > 0";
    else if (c->num_layers < 0 || c->num_single_layers < 0) bad = "block counts must be >= 0";
    else if (c->heads <= 0 || c->head_dim <= 0 || c->head_dim % 2) bad = "heads > 0 and an even head_dim are required";
    else if (c->joint_dim <= 0 || c->pooled_dim <= 0) bad = "joint_dim and pooled_dim must be > 0";
    else if (c->axes_dim[0] % 2 || c->axes_dim[1] % 2 || c->axes_dim[2] % 2 ||
             c->axes_dim[0] + c->axes_dim[1] + c->axes_dim[2] != c->head_dim)
        bad = "axes_dim must be three even numbers summing to head_dim";
    else if (c->mlp_ratio <= 0) bad = "mlp_ratio must be > 0";
    if (bad) {
        snprintf(err, errlen, "flux config: %s (in %d out %d layers %d+%d heads %d x %d axes %d,%d,%d)", bad,
                 c->in_channels, c->out_channels, c->num_layers, c->num_single_layers, c->heads, c->head_dim,
                 c->axes_dim[0], c->axes_dim[1], c->axes_dim[2]);
        return -1;
    }
    return 0;
}

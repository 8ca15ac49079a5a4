// bench_blocks.h — `cameo bench blocks`: one FLUX double block and one single block, each with its
// InstantCharacter IP branch, at FLUX.1-dev's 512² shapes, built with cameo's own model code
// (frozen FLUX weights: dX only; trainable IP weights), timed forward, forward + backward and
// forward + backward under a recompute scope; model FLOPs counted analytically and printed as
// MFU against the matrix peak measured in the same run (cuBLASLt's best bf16 GEMM on CUDA,
// OpenBLAS SGEMM on the CPU); then the whole 512² adapter step projected from them (time, MFU)
// and its memory on one card, and, with --full-step, one real step measured beside both.
// defines: blocks_dims, blocks_flops, blocks_rig, blocks_mode and the blocks_* functions.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "models/flux.h"
#include "models/ic_projector.h"
#include "models/ip_attn.h"

typedef struct blocks_dims {
    int64_t B;   // batch (1)
    int64_t Lt;  // text tokens (T5: 512)
    int64_t N;   // image tokens (512² → 64x64 latents → 2x2 patches: 1024)
    int64_t C;   // hidden (3072 = H x D)
    int64_t H;   // heads (24)
    int64_t D;   // head dim (128)
    int64_t F;   // MLP width (4C)
    int64_t Li;  // IP tokens: the projector's resampler queries (1024)
    int64_t Ci;  // IP token width: the projector's output_dim (4096)
} blocks_dims;

blocks_dims blocks_dims_flux_dev(void);  // the 512² shapes above, batch 1
bool blocks_dims_eq(const blocks_dims *a, const blocks_dims *b);

// Model FLOPs of one pass over a block (see bench_blocks.c for the formulas), and the linear-layer
// GEMM calls it makes (what cm_gemm_calls counts; attention kernels are not GEMM calls).
typedef struct blocks_flops {
    double fwd, bwd;         // forward; backward (frozen dX only, trainable dX + dW, attention 2.5x)
    double attn_fwd;         // of fwd: the joint attention and the IP attention
    int gemm_fwd, gemm_bwd;  // linear GEMM calls in forward; in backward
} blocks_flops;
blocks_flops blocks_flops_double(const blocks_dims *d);
blocks_flops blocks_flops_single(const blocks_dims *d);
// the projector (CrossLayerCrossScaleProjector, all trainable) on B samples of L feature tokens
blocks_flops blocks_flops_projector(const ic_projector_config *c, int64_t B, int64_t L);

struct blocks_rig;
typedef struct blocks_rc_ctx { struct blocks_rig *r; int single; } blocks_rc_ctx;  // a recompute replay's context

// One double and one single block of a FLUX at the given dims (flux_init with 1 + 1 blocks),
// two IP modules (0: double, 1: single), and the inputs a block sees inside the training step.
typedef struct blocks_rig {
    blocks_dims d;
    cm_device dev;
    cm_dtype dt;
    flux_model m;
    cm_params ps_flux;     // frozen (no requires_grad): no dW GEMM ever runs for these
    ip_attn ip;
    cm_params ps_ip;       // trainable
    cm_tensor *h;          // [B, Lt + N, C] block input [txt; img], requires grad (dX flows to it)
    cm_tensor *temb_act;   // [B, C] silu(temb): needs no gradient, as in the step
    cm_tensor *cos, *sin;  // [Lt + N, D] RoPE tables
    cm_tensor *tok;        // [B, Li, Ci] projector tokens, require grad (the projector trains)
    cm_tensor *gout;       // [B, Lt + N, C] the output gradient backward starts from
    blocks_rc_ctx rc[2];   // recompute contexts: double, single
} blocks_rig;

typedef enum { BLOCKS_FWD = 0, BLOCKS_FWDBWD = 1, BLOCKS_RECOMPUTE = 2 } blocks_mode;

// 0, or -1 with err set (bad dims, bf16 on the CPU)
int blocks_rig_init(blocks_rig *r, const blocks_dims *d, cm_device dev, cm_dtype dt, uint64_t seed, char *err,
                    size_t errlen);
void blocks_rig_free(blocks_rig *r);
// one pass of the double (single = 0) or single (1) block. BLOCKS_FWD leaves the tape recorded;
// blocks_rig_reset drops it and every gradient.
void blocks_rig_run(blocks_rig *r, int single, blocks_mode mode);
void blocks_rig_reset(blocks_rig *r);

// Fills every parameter of ps by its init rule's scale (nn.Linear bound, normal std, zeros, ones)
// from one small random pool on the device, copied around and scaled: random-looking weights for
// timing at 10^10 parameters without generating them one by one on the host.
void blocks_fill_params(cm_params *ps, uint64_t seed);

// autograd.h — the define-by-run tape: grad mode, backward, no-grad and recompute scopes.
// defines: cm_node, cm_opdef, autograd_* functions.
#pragma once
#include "autograd/tensor.h"

#define CM_MAX_INPUTS 8
#define CM_MAX_SAVED 8

struct cm_node;
// backward: given the output gradient gout, writes gin[i] (a new tensor with the input's shape)
// for each input i with n->needs[i] set; leaves the others NULL.
typedef void (*cm_backward_fn)(struct cm_node *n, cm_tensor *gout, cm_tensor **gin);

// one row of the op table: the op's name and its backward rule (forward and shape rule sit
// beside it in the same ops_*.c file)
typedef struct cm_opdef {
    const char *name;
    cm_backward_fn backward;
} cm_opdef;

// where an input's gradient goes: the node that made it, or the leaf that wants it
typedef struct cm_edge {
    struct cm_node *node;
    cm_tensor *leaf;
} cm_edge;

typedef struct cm_node {
    const cm_opdef *op;
    int refcount;            // the tape's reference + the output tensor's reference
    int n_in;
    cm_edge edge[CM_MAX_INPUTS];
    bool needs[CM_MAX_INPUTS];             // input i needs a gradient
    int in_ndim[CM_MAX_INPUTS];
    int64_t in_shape[CM_MAX_INPUTS][CM_MAX_DIMS];
    int64_t in_stride[CM_MAX_INPUTS][CM_MAX_DIMS];  // for view ops' backward
    int64_t in_offset[CM_MAX_INPUTS];
    cm_dtype in_dtype[CM_MAX_INPUTS];
    cm_tensor *saved[CM_MAX_SAVED];        // retained for backward, released right after it
    double f[8];                           // op parameters
    int64_t i[8];
    void *extra;                           // op-owned state (recompute scopes)
    void (*free_extra)(void *);
    int out_ndim;
    int64_t out_shape[CM_MAX_DIMS];
    cm_dtype out_dtype;
    cm_device dev;
    cm_tensor *grad;                       // accumulated gradient of the output
    bool done;                             // backward ran (or the tape was reset): saved state is gone
} cm_node;

// --- grad mode ---
bool autograd_grad_enabled(void);
void autograd_no_grad_push(void);  // nestable
void autograd_no_grad_pop(void);

// --- leaves ---
void tensor_set_requires_grad(cm_tensor *t, bool r);
void tensor_zero_grad(cm_tensor *t);  // releases .grad
bool tensor_needs_grad(const cm_tensor *t);  // a leaf with requires_grad, or an op output on the tape

// --- backward ---
// seeds the gradient of a scalar (or any) tensor with ones (or with grad, same shape) and runs
// the tape backwards; leaf .grad += ...; every node's saved tensors are released once used;
// the tape is empty afterwards. Dies when loss needs no gradient (no-grad, or nothing under it
// requires one) or its graph is spent (an earlier backward or a tape reset): never a silent no-op.
void autograd_backward(cm_tensor *loss, cm_tensor *grad);
// the name of the op whose backward runs on this thread, or NULL (for out-of-memory messages)
const char *autograd_backward_op(void);
// the leaf hook: fn(leaf, ctx) runs during a backward the moment a leaf with hook_tag != 0 is
// held by no tape node any more — its .grad is final for this backward and its own (no other
// gradient shares its buffer: fn may change it in place) (the gradient reducer
// launches a bucket's reduction there while the rest of backward still runs). A leaf inside a
// recompute scope becomes final when its scope's replay is consumed; one used in two scopes
// fires once per scope. NULL turns it off. A tape reset never fires it.
typedef void (*cm_leaf_hook)(cm_tensor *leaf, void *ctx);
void autograd_set_leaf_hook(cm_leaf_hook fn, void *ctx);
// drops the tape without running backward (evaluation, or after a skipped step)
void autograd_tape_reset(void);
int64_t autograd_tape_len(void);

// --- recompute (activation checkpoint) scope ---
// out = fn(ctx, inputs): runs fn under no-grad and keeps only the inputs; during backward
// it replays fn with grad on and back-propagates through the replay. fn must be deterministic
// and must read any parameters through ctx (their gradients accumulate directly). An input's
// gradient gathered so far (when nothing else holds it) is the replay's accumulator: the replay
// adds into it as the plain tape would — the same bits with or without the scope (but for one
// tensor given twice, or a leaf also read through ctx: their parts are summed apart).
typedef cm_tensor *(*cm_recompute_fn)(void *ctx, int n, cm_tensor **inputs);
cm_tensor *autograd_recompute(cm_recompute_fn fn, void *ctx, int n, cm_tensor **inputs);
// the most bytes a scope's replayed forward left allocated on its device (its output and what its
// backward reads: what the scope would keep from forward to backward without it), over the replays
// since the last reset (train.recompute: auto measures them on a stage's first step)
int64_t autograd_recompute_max_kept(bool reset);

// --- for op implementations (ops_*.c) ---
// makes the node for out when grad mode is on and any input needs a gradient; NULL otherwise.
cm_node *autograd_record(const cm_opdef *op, cm_tensor *out, int n_in, cm_tensor **in);
void node_save(cm_node *n, int slot, cm_tensor *t);  // retains t
// input i's gradient accumulated so far, when a backward may add its gradient into it in place:
// it exists, is contiguous, and nothing else holds it (one reference to the tensor and one to its
// storage); NULL otherwise. A backward that adds into it sets gin[i] to it, retained — the tape
// then has nothing left to sum (no temporary gradient, no extra pass over it).
cm_tensor *autograd_grad_target(const cm_node *n, int i);

// --- the op table (op_table.c) ---
void op_table_each(void (*fn)(const cm_opdef *op, void *ctx), void *ctx);
const cm_opdef *op_table_find(const char *name);

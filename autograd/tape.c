// tape.c — the define-by-run tape: recording, backward, grad mode, recompute scopes.
// Nodes are appended in creation order, so walking the tape backwards is a topological order.
#include <stdlib.h>
#include <string.h>
#include "autograd/autograd.h"
#include "autograd/alloc.h"
#include "autograd/ops.h"
#include "autograd/ops_internal.h"

static cm_node **tape;
static int64_t tape_len, tape_cap;
static int no_grad_depth;
static int backward_depth;  // > 0 while backward_range runs (nested by recompute scopes)
static cm_leaf_hook leaf_hook;
static void *leaf_hook_ctx;

void autograd_set_leaf_hook(cm_leaf_hook fn, void *ctx) {
    leaf_hook = fn;
    leaf_hook_ctx = ctx;
}

static bool grad_unique(const cm_tensor *acc);

// a tagged leaf's last holder on the tape let it go: during a backward its gradient is final
static void leaf_let_go(cm_tensor *leaf) {
    if (!leaf->hook_tag) return;
    CM_CHECK(leaf->pending_uses > 0, "autograd", "'%s': leaf use count below zero (internal error)", leaf->name);
    if (--leaf->pending_uses == 0 && backward_depth > 0 && leaf_hook) {
        // the hook may change .grad in place (the reducer averages it there), but a pass-through
        // backward can leave it sharing its buffer with a gradient still to flow (x + p: both
        // inputs' gradients are views of the sum's) or with another leaf's: it gets its own first
        cm_tensor *g = leaf->grad;
        if (g && !grad_unique(g)) {
            cm_tensor *c = tensor_empty(g->dtype, g->ndim, g->shape, g->storage->dev);
            if (tensor_numel(g)) BE(g)->copy_strided(KC(g), g->ndim, g->shape, g->dtype, tensor_data(c), c->stride, g->dtype,
                                                     tensor_data(g), g->stride);
            leaf->grad = c;
            tensor_release(g);
        }
        leaf_hook(leaf, leaf_hook_ctx);
    }
}

bool autograd_grad_enabled(void) { return no_grad_depth == 0; }
void autograd_no_grad_push(void) { no_grad_depth++; }
void autograd_no_grad_pop(void) {
    CM_CHECK(no_grad_depth > 0, "autograd_no_grad_pop", "unbalanced no-grad scope");
    no_grad_depth--;
}
int64_t autograd_tape_len(void) { return tape_len; }

void tensor_set_requires_grad(cm_tensor *t, bool r) {
    CM_CHECK(!t->grad_fn, "tensor_set_requires_grad", "'%s' is not a leaf (made by an op)", t->name);
    CM_CHECK(!r || dtype_is_float(t->dtype), "tensor_set_requires_grad", "'%s' has dtype %s; only floats take gradients",
             t->name, dtype_name(t->dtype));
    t->requires_grad = r;
}
void tensor_zero_grad(cm_tensor *t) { TENSOR_DROP(t->grad); }
bool tensor_needs_grad(const cm_tensor *t) { return t && t->requires_grad; }

// frees what backward needed; the node struct itself lives while referenced
static void node_consume(cm_node *n) {
    if (n->done) return;
    n->done = true;
    for (int i = 0; i < CM_MAX_SAVED; i++) TENSOR_DROP(n->saved[i]);
    TENSOR_DROP(n->grad);
    for (int i = 0; i < n->n_in; i++) {
        if (n->edge[i].node) { void node_release(cm_node *); node_release(n->edge[i].node); }
        if (n->edge[i].leaf) leaf_let_go(n->edge[i].leaf);
        tensor_release(n->edge[i].leaf);
        n->edge[i].node = NULL;
        n->edge[i].leaf = NULL;
    }
    if (n->extra && n->free_extra) n->free_extra(n->extra);
    n->extra = NULL;
}

void node_release(cm_node *n) {
    if (!n || --n->refcount > 0) return;
    node_consume(n);
    free(n);
}

static void tape_push(cm_node *n) {
    if (tape_len == tape_cap) {
        tape_cap = tape_cap ? 2 * tape_cap : 1024;
        tape = realloc(tape, (size_t)tape_cap * sizeof *tape);
        CM_CHECK(tape, "autograd", "out of host memory for the tape");
    }
    tape[tape_len++] = n;
}

static cm_node *record(const cm_opdef *op, cm_tensor *out, int n_in, cm_tensor **in, bool force) {
    if (!autograd_grad_enabled()) return NULL;
    CM_CHECK(n_in <= CM_MAX_INPUTS, op->name, "%d inputs (at most %d)", n_in, CM_MAX_INPUTS);
    bool any = force;
    for (int i = 0; i < n_in; i++) any |= tensor_needs_grad(in[i]);
    if (!any) return NULL;
    cm_node *n = calloc(1, sizeof *n);
    CM_CHECK(n, op->name, "out of host memory for a tape node");
    n->op = op;
    n->n_in = n_in;
    n->refcount = 2;  // the tape and out
    for (int i = 0; i < n_in; i++) {
        cm_tensor *x = in[i];
        if (!x) continue;
        n->in_ndim[i] = x->ndim;
        memcpy(n->in_shape[i], x->shape, sizeof x->shape);
        memcpy(n->in_stride[i], x->stride, sizeof x->stride);
        n->in_offset[i] = x->offset;
        n->in_dtype[i] = x->dtype;
        n->needs[i] = tensor_needs_grad(x);
        if (!n->needs[i]) continue;
        if (x->grad_fn) {
            n->edge[i].node = x->grad_fn;
            x->grad_fn->refcount++;
        } else {
            n->edge[i].leaf = tensor_retain(x);
            if (x->hook_tag) x->pending_uses++;
        }
    }
    n->out_ndim = out->ndim;
    memcpy(n->out_shape, out->shape, sizeof out->shape);
    n->out_dtype = out->dtype;
    n->dev = out->storage->dev;
    out->grad_fn = n;
    out->requires_grad = true;
    tape_push(n);
    return n;
}

cm_node *autograd_record(const cm_opdef *op, cm_tensor *out, int n_in, cm_tensor **in) { return record(op, out, n_in, in, false); }

void node_save(cm_node *n, int slot, cm_tensor *t) {
    CM_CHECK(slot >= 0 && slot < CM_MAX_SAVED, n->op->name, "save slot %d out of range", slot);
    tensor_release(n->saved[slot]);
    n->saved[slot] = tensor_retain(t);
}

// an accumulated gradient nothing else sees (one reference to the tensor, one to its storage):
// adding into it in place cannot change a tensor anyone holds
static bool grad_unique(const cm_tensor *acc) {
    return acc && acc->refcount == 1 && acc->storage->refcount == 1 && tensor_is_contiguous(acc);
}

static cm_tensor **grad_slot(const cm_node *n, int i) {
    if (n->edge[i].node) return &n->edge[i].node->grad;
    if (n->edge[i].leaf) return &n->edge[i].leaf->grad;
    return NULL;
}

// a dtype the device stores but has no arithmetic for (bf16 / f16 on the CPU): a view or a cast of
// such a tensor carries a gradient in it, which no kernel can add to in place
static bool storage_only(const cm_tensor *t) {
    return t->storage->dev.type == CM_CPU && t->dtype != CM_F32 && t->dtype != CM_F64;
}

cm_tensor *autograd_grad_target(const cm_node *n, int i) {
    if (i < 0 || i >= n->n_in || !n->needs[i]) return NULL;
    cm_tensor **slot = grad_slot(n, i);
    return slot && grad_unique(*slot) && !storage_only(*slot) ? *slot : NULL;
}

// acc + g: in place when acc is unique (the bits of the out-of-place add), else a new sum, so that
// no gradient buffer another reference sees is ever modified
static cm_tensor *grad_accumulate(cm_tensor *acc, cm_tensor *g) {
    if (!acc) return tensor_is_contiguous(g) ? tensor_retain(g) : op_contiguous(g);
    cm_tensor *s;
    if (storage_only(acc)) {  // summed in f32 and rounded once, as the CUDA kernels add bf16
        cm_tensor *a = op_cast(acc, CM_F32), *b = op_cast(g, CM_F32), *s32 = op_add(a, b);
        s = op_cast(s32, acc->dtype);
        tensor_release(a), tensor_release(b), tensor_release(s32);
    } else {
        if (grad_unique(acc) && acc->dtype == g->dtype && tensor_same_shape(acc, g) && ops_add_into(acc, g)) return acc;
        s = op_add(acc, g);
    }
    tensor_release(acc);
    return s;
}

static void check_grad_shape(const cm_node *n, int i, const cm_tensor *g) {
    bool ok = g->ndim == n->in_ndim[i];
    for (int d = 0; ok && d < g->ndim; d++) ok = g->shape[d] == n->in_shape[i][d];
    if (!ok) {
        char b[128];
        cm_die(n->op->name, "backward produced gradient %s for input %d of %d dims (internal error)",
               tensor_shape_str(g, b, sizeof b), i, n->in_ndim[i]);
    }
}

static __thread const char *g_backward_op;  // the op whose backward runs on this thread (or NULL)
const char *autograd_backward_op(void) { return g_backward_op; }

// runs and consumes tape[lo..len) backwards, then truncates the tape to lo
static void backward_range(int64_t lo) {
    autograd_no_grad_push();
    backward_depth++;
    for (int64_t k = tape_len - 1; k >= lo; k--) {
        cm_node *n = tape[k];
        if (n->grad && !n->done) {
            cm_tensor *gin[CM_MAX_INPUTS] = {0}, *pre[CM_MAX_INPUTS];
            // an input's unique accumulator before the backward: returned in gin, it was added into
            for (int i = 0; i < n->n_in; i++) pre[i] = autograd_grad_target(n, i);
            const char *outer = g_backward_op;  // a recompute scope's backward nests this loop
            g_backward_op = n->op->name;
            n->op->backward(n, n->grad, gin);
            g_backward_op = outer;
            for (int i = 0; i < n->n_in; i++) {
                if (!gin[i]) continue;
                check_grad_shape(n, i, gin[i]);
                // an input made in a graph an earlier backward (or a tape reset) spent: its gradient
                // would stop there, never reaching its leaves, without a word
                const cm_node *src = n->edge[i].node;
                if (src && src->done)
                    cm_die("autograd_backward", "input %d of %s was made by %s in a graph already spent (by an earlier "
                           "backward, or a tape reset): its gradient cannot reach the tensors it came from; a tensor kept "
                           "from an earlier step is read again — recompute it, or op_detach it when it needs no gradient",
                           i, n->op->name, src->op->name);
                cm_tensor **slot = grad_slot(n, i);
                if (slot && !(pre[i] && gin[i] == pre[i])) *slot = grad_accumulate(*slot, gin[i]);
                tensor_release(gin[i]);
            }
        }
        node_consume(n);
        node_release(n);  // the tape's reference
    }
    tape_len = lo;
    backward_depth--;
    autograd_no_grad_pop();
}

static void seed_and_run(cm_tensor *out, cm_tensor *grad, int64_t lo) {
    if (!out->grad_fn) {
        if (out->requires_grad) out->grad = grad_accumulate(out->grad, grad);  // a leaf: its own gradient
        backward_range(lo);
        return;
    }
    cm_node *n = out->grad_fn;
    n->grad = grad_accumulate(n->grad, grad);
    backward_range(lo);
}

void autograd_backward(cm_tensor *loss, cm_tensor *grad) {
    // nothing to run: a silent no-op would leave every gradient unchanged (and a seed on a spent
    // node would never be freed)
    char sh[128];
    tensor_shape_str(loss, sh, sizeof sh);
    CM_CHECK(loss->grad_fn || loss->requires_grad, "autograd_backward",
             "the tensor %s%s%s%s does not require a gradient (made under no-grad, or from tensors none of which "
             "requires one)", loss->name[0] ? "'" : "", loss->name, loss->name[0] ? "' " : "", sh);
    CM_CHECK(!loss->grad_fn || !loss->grad_fn->done, "autograd_backward",
             "the tensor %s%s%s%s (made by %s): its graph is already spent (by an earlier backward, which empties the "
             "whole tape, or by a tape reset)", loss->name[0] ? "'" : "", loss->name, loss->name[0] ? "' " : "", sh,
             loss->grad_fn ? loss->grad_fn->op->name : "?");
    cm_tensor *g = grad ? tensor_retain(grad) : tensor_full(loss->dtype, loss->ndim, loss->shape, 1.0, loss->storage->dev);
    CM_CHECK(tensor_same_shape(g, loss), "autograd_backward", "seed gradient shape differs from the output's");
    // a seed of another dtype would flow down as it is: an f64 leaf could end with an f32 .grad
    if (g->dtype != loss->dtype || !device_eq(g->storage->dev, loss->storage->dev)) {
        char a[128], b[128];
        cm_die("autograd_backward", "seed gradient %s differs in dtype or device from the output %s",
               tensor_shape_str(g, a, sizeof a), tensor_shape_str(loss, b, sizeof b));
    }
    seed_and_run(loss, g, 0);
    tensor_release(g);
}

void autograd_tape_reset(void) {
    for (int64_t k = tape_len - 1; k >= 0; k--) {
        node_consume(tape[k]);
        node_release(tape[k]);
    }
    tape_len = 0;
}

// --- recompute scope ---
typedef struct { cm_recompute_fn fn; void *ctx; } rc_state;

static int64_t rc_max_kept;  // the most bytes a replayed forward left allocated (autograd_recompute_max_kept)

// input i's accumulator may be lent to the replay: it is unique (autograd_grad_target) and no other
// input of the scope gathers into the same one
static bool rc_can_lend(const cm_node *n, int i) {
    cm_tensor **slot = grad_slot(n, i);
    if (!slot || !autograd_grad_target(n, i)) return false;
    for (int j = 0; j < n->n_in; j++)
        if (j != i && n->needs[j] && grad_slot(n, j) == slot) return false;
    return true;
}

static void recompute_backward(cm_node *n, cm_tensor *gout, cm_tensor **gin) {
    rc_state *st = n->extra;
    cm_tensor *xs[CM_MAX_INPUTS] = {0};
    bool lent[CM_MAX_INPUTS] = {0};
    cm_device dev = CM_DEV_CPU;
    for (int i = 0; i < n->n_in; i++) {
        if (!n->saved[i]) continue;
        xs[i] = op_detach(n->saved[i]);
        xs[i]->requires_grad = n->needs[i];
        dev = xs[i]->storage->dev;
        // what the input has gathered so far (an input every block reads: FLUX's temb, the IP
        // tokens) becomes the replay's accumulator, moved out of its slot so that it stays unique:
        // the replay's ops add into it one by one, as on the plain tape — the same sums in the same
        // order (the same bits with or without the scope), and no partial sum per scope
        if (n->needs[i] && rc_can_lend(n, i)) {
            cm_tensor **slot = grad_slot(n, i);
            xs[i]->grad = *slot;
            *slot = NULL;
            lent[i] = true;
        }
    }
    int saved_depth = no_grad_depth;
    no_grad_depth = 0;  // replay with the tape on
    int64_t lo = tape_len;
    size_t before = alloc_stats(dev).current;
    cm_tensor *out = st->fn(st->ctx, n->n_in, xs);
    // what the scope's forward would have kept until its backward without the scope
    int64_t kept = (int64_t)alloc_stats(dev).current - (int64_t)before;
    if (kept > rc_max_kept) rc_max_kept = kept;
    seed_and_run(out, gout, lo);  // also turns the no-grad depth back on and off inside
    no_grad_depth = saved_depth;
    tensor_release(out);
    for (int i = 0; i < n->n_in; i++) {
        if (lent[i]) {  // back into its slot, holding the replay's sum; nothing left for the tape to add
            cm_tensor **slot = grad_slot(n, i), *g = xs[i]->grad;
            xs[i]->grad = NULL;
            if (*slot) {  // the replay gave the slot a gradient of its own (a leaf read through ctx too)
                *slot = grad_accumulate(*slot, g);
                tensor_release(g);
            } else *slot = g;
        } else if (xs[i] && n->needs[i] && xs[i]->grad) gin[i] = tensor_retain(xs[i]->grad);
        tensor_release(xs[i]);
    }
}

static const cm_opdef OP_RECOMPUTE = {"recompute", recompute_backward};

cm_tensor *autograd_recompute(cm_recompute_fn fn, void *ctx, int n, cm_tensor **inputs) {
    if (!autograd_grad_enabled()) return fn(ctx, n, inputs);
    CM_CHECK(n <= CM_MAX_INPUTS && n <= CM_MAX_SAVED, "autograd_recompute", "%d inputs (at most %d)", n, CM_MAX_SAVED);
    autograd_no_grad_push();
    cm_tensor *out = fn(ctx, n, inputs);
    autograd_no_grad_pop();
    // fn gave back a tensor it did not make (an input: op_contiguous of a contiguous one; a
    // parameter): the scope's node goes on a view of it, never on it — an input's own node (or a
    // leaf's leafness) would be overwritten, its gradient lost from the next graph on
    if (out->grad_fn || out->requires_grad) {
        cm_tensor *v = op_detach(out);
        tensor_release(out);
        out = v;
    }
    // recorded even when no input needs a gradient: parameters inside fn may
    cm_node *node = record(&OP_RECOMPUTE, out, n, inputs, true);
    for (int i = 0; i < n; i++) node_save(node, i, inputs[i]);
    rc_state *st = malloc(sizeof *st);
    CM_CHECK(st, "autograd_recompute", "out of host memory");
    st->fn = fn;
    st->ctx = ctx;
    node->extra = st;
    node->free_extra = free;
    return out;
}

const cm_opdef *autograd_recompute_opdef(void) { return &OP_RECOMPUTE; }

int64_t autograd_recompute_max_kept(bool reset) {
    int64_t v = rc_max_kept;
    if (reset) rc_max_kept = 0;
    return v;
}

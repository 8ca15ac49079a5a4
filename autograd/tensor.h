// tensor.h — the cameo tensor: dtype, shape, strides, device, refcounted storage.
// defines: cm_dtype, cm_device, cm_storage, cm_tensor and the tensor_* functions.
// A tensor is a view (shape, element strides, element offset) of a storage. Views share the
// storage; the storage returns to its device's caching allocator when its last view is released.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CM_MAX_DIMS 6

typedef enum { CM_F32 = 0, CM_BF16, CM_F16, CM_F64, CM_I32, CM_U8, CM_NDTYPES } cm_dtype;
typedef enum { CM_CPU = 0, CM_CUDA = 1 } cm_devtype;
typedef struct { cm_devtype type; int index; } cm_device;

static const cm_device CM_DEV_CPU = {CM_CPU, 0};

typedef struct cm_storage {
    void *data;
    size_t nbytes;
    int refcount;
    cm_device dev;
} cm_storage;

struct cm_node;

typedef struct cm_tensor {
    int ndim;
    int64_t shape[CM_MAX_DIMS];
    int64_t stride[CM_MAX_DIMS];  // in elements
    int64_t offset;               // in elements
    cm_dtype dtype;
    cm_storage *storage;
    int refcount;
    bool requires_grad;           // a leaf that wants .grad, or an op output on the tape
    struct cm_tensor *grad;       // leaves only: accumulated gradient (+=)
    struct cm_node *grad_fn;      // the tape node that made it (NULL for leaves)
    int hook_tag;                 // leaves: != 0 → autograd's leaf hook fires when its .grad is final
    int pending_uses;             // tagged leaves: tape nodes that still hold it as an input
    char name[64];                // optional, for error messages and checkpoints
} cm_tensor;

// --- dtypes ---
size_t dtype_size(cm_dtype dt);
const char *dtype_name(cm_dtype dt);
bool dtype_is_float(cm_dtype dt);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

// --- devices ---
const char *device_name(cm_device d, char *buf, size_t n);  // "cpu", "cuda:0"
bool device_eq(cm_device a, cm_device b);

// --- creation (refcount 1, owned by the caller) ---
cm_tensor *tensor_empty(cm_dtype dt, int ndim, const int64_t *shape, cm_device dev);
cm_tensor *tensor_zeros(cm_dtype dt, int ndim, const int64_t *shape, cm_device dev);
cm_tensor *tensor_full(cm_dtype dt, int ndim, const int64_t *shape, double value, cm_device dev);
cm_tensor *tensor_empty_like(const cm_tensor *t);
cm_tensor *tensor_zeros_like(const cm_tensor *t);
// copies host data of dtype dt (contiguous) into a new tensor on dev
cm_tensor *tensor_from_host(cm_dtype dt, int ndim, const int64_t *shape, const void *data, cm_device dev);
// wraps an existing host buffer without copying; the buffer must outlive the tensor
cm_tensor *tensor_wrap_host(cm_dtype dt, int ndim, const int64_t *shape, void *data);
// deterministic N(0, std) / U(lo, hi) fill from a counter-based RNG keyed by seed
void tensor_fill_randn(cm_tensor *t, uint64_t seed, double std);
void tensor_fill_uniform(cm_tensor *t, uint64_t seed, double lo, double hi);

// convenience: shapes as literal lists, e.g. tensor_zeros(CM_F32, SHAPE(2, 3), dev)
#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

// --- references ---
cm_tensor *tensor_retain(cm_tensor *t);
void tensor_release(cm_tensor *t);  // NULL ok
// release and set the pointer to NULL
#define TENSOR_DROP(t) do { tensor_release(t); (t) = NULL; } while (0)

// --- queries ---
int64_t tensor_numel(const cm_tensor *t);
size_t tensor_nbytes(const cm_tensor *t);
bool tensor_is_contiguous(const cm_tensor *t);
bool tensor_same_shape(const cm_tensor *a, const cm_tensor *b);
void *tensor_data(const cm_tensor *t);  // pointer to element 0 of the view
int64_t tensor_dim(const cm_tensor *t, int d);  // negative d counts from the end
const char *tensor_shape_str(const cm_tensor *t, char *buf, size_t n);  // "[2, 3] f32 cpu"
// normalises a possibly negative axis, dies with the op name when out of range
int tensor_axis(const cm_tensor *t, int axis, const char *op);

// --- raw views (no autograd; the autograd-aware versions live in ops.h) ---
cm_tensor *tensor_view_raw(const cm_tensor *t, int ndim, const int64_t *shape, const int64_t *stride, int64_t offset);
// host copies: element i of the (possibly strided) tensor as double
double tensor_get(const cm_tensor *t, int64_t flat_index);
void tensor_copy_to_host(const cm_tensor *t, cm_dtype dt, void *dst);  // any layout, any device

// --- errors ---
// prints "cameo: <where>: <message>" and exits(1); for programmer errors (impossible shapes)
_Noreturn void cm_die(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define CM_CHECK(cond, where, ...) do { if (!(cond)) cm_die(where, __VA_ARGS__); } while (0)
// formats a recoverable error into a caller's buffer (err may be NULL or errlen 0: nothing written)
void cm_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// a warning on stderr: "cameo: <message>\n"; cm_warn_mute(true) silences them (the ranks other
// than 0 of a data-parallel run, whose warnings would repeat rank 0's)
void cm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cm_warn_mute(bool mute);

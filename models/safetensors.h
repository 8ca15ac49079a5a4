// safetensors.h — reading (memory-mapped) and writing the safetensors format, and the sharded
// "*.safetensors.index.json" layout of diffusers / transformers checkpoints.
// defines: st_entry, st_file (st_open*, st_count, st_at, st_find, st_meta, st_close),
//          st_writer (st_writer_*), st_index (st_index_*), st_to_tensor.
//
// Format: u64 little-endian header length N, N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}?, name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// then the data buffer; offsets are relative to the byte after the header. Like the reference
// (Rust) reader we require the tensors to tile the buffer exactly: sorted by offset, no gap, no
// overlap, and the last one ending at the end of the file.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../autograd/tensor.h"

#define ST_MAX_HEADER (100u * 1000u * 1000u)  // same limit as the Python package

typedef struct {
    const char *name;
    cm_dtype dtype;          // CM_NDTYPES when the file's dtype is valid safetensors but not a cm dtype
    const char *dtype_str;   // as written in the file: "F32", "I64", "F8_E4M3", ...
    int ndim;                // 0 = scalar
    int64_t shape[CM_MAX_DIMS];
    const void *data;        // points into the mapping; valid until st_close. May be unaligned
                             // for files from writers that do not order by alignment.
    size_t nbytes;
} st_entry;

typedef struct st_file st_file;

// Maps and validates a file. Returns NULL and writes "<path>: <problem>" into err on any
// malformed input. Tensors of dtypes cameo has no type for (I64, BOOL, F8_*, ...) are listed
// with dtype == CM_NDTYPES; st_to_tensor reports them by name (and converts I64 to I32).
st_file *st_open(const char *path, char *err, size_t errlen);
// Same over a caller's buffer (not copied; must outlive the st_file). `name` is used in messages.
st_file *st_open_memory(const void *buf, size_t size, const char *name, char *err, size_t errlen);
int st_count(const st_file *f);
const st_entry *st_at(const st_file *f, int i);            // header order; NULL when out of range
const st_entry *st_find(const st_file *f, const char *name);  // NULL when absent
const char *st_meta(const st_file *f, const char *key);      // "__metadata__" value or NULL
int st_meta_count(const st_file *f);
const char *st_meta_key(const st_file *f, int i);          // keys in sorted order
const char *st_path(const st_file *f);
void st_close(st_file *f);  // NULL ok

// dtype names of the format <-> cm_dtype (-1 / NULL when there is none)
int st_dtype_parse(const char *s);
const char *st_dtype_str(cm_dtype dt);

// --- writer ---
// Writes files byte-identical to safetensors.torch.save / safetensors.numpy.save for the same
// tensors and at most one metadata key: tensors laid out by descending dtype alignment (F64,
// F32, I32, BF16, F16, U8) then by name, header padded with spaces to a multiple of 8.
// Metadata keys are written sorted (Python writes them in hash order, so with two or more keys
// only the parsed content matches).
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
void st_writer_meta(st_writer *w, const char *key, const char *value);  // copies; a repeated key replaces
// References `data` (no copy: checkpoints are GBs); it must stay valid until st_writer_save returns.
void st_writer_add(st_writer *w, const char *name, cm_dtype dt, int ndim, const int64_t *shape, const void *data);
// Copies `data` (for temporaries).
void st_writer_add_copy(st_writer *w, const char *name, cm_dtype dt, int ndim, const int64_t *shape, const void *data);
// Atomic: writes path.tmp, fsyncs it, renames it over path, fsyncs the folder. Returns 0, or -1
// with "<path>: <problem>" in err (bad or duplicate names are reported here); path is untouched
// on failure.
int st_writer_save(st_writer *w, const char *path, char *err, size_t errlen);
// the same, *sum (may be NULL) getting the file's size and crc32 (models/atomic_file.h)
struct af_sum;
int st_writer_save_sum(st_writer *w, const char *path, struct af_sum *sum, char *err, size_t errlen);
void st_writer_free(st_writer *w);  // NULL ok

// --- sharded checkpoints ---
// dir_or_file: a folder holding one "*.safetensors.index.json" (or else exactly one
// "*.safetensors"), an index JSON file, or a single .safetensors file. Every shard named in
// "weight_map" is opened and every mapped name must exist in its shard.
typedef struct st_index st_index;
st_index *st_index_open(const char *dir_or_file, char *err, size_t errlen);
int st_index_count(const st_index *ix);
const st_entry *st_index_at(const st_index *ix, int i);           // sorted by name
const st_entry *st_index_find(const st_index *ix, const char *name);
const st_file *st_index_shard_of(const st_index *ix, const char *name);  // for messages
void st_index_close(st_index *ix);  // NULL ok

// Copies an entry into a new tensor on dev (dtype kept; I64 converted to I32 when every value
// fits). NULL and "<name>: <problem>" in err for dtypes cameo cannot hold.
cm_tensor *st_to_tensor(const st_entry *e, cm_device dev, char *err, size_t errlen);

// torch_import.h — reads PyTorch checkpoints written by torch.save (the zip format, default since
// PyTorch 1.6), such as the released InstantCharacter `instantcharacter_ip-adapter.bin`, without
// Python: a ZIP reader for STORED entries (ZIP64 included: the release is 5.6 GB) and a minimal
// pickle VM for the opcodes torch.save emits.
// defines: ti_tensor, ti_file and the torch_import_* functions.
//
// Layout of such a file: a ZIP of <prefix>/data.pkl (pickle protocol 2), <prefix>/data/<key>
// (raw little-endian storages, one per storage), <prefix>/byteorder, <prefix>/version, ...
// data.pkl holds e.g. {"image_proj": OrderedDict(...), "ip_adapter": OrderedDict(...)}; each
// tensor is REDUCE(torch._utils._rebuild_tensor_v2, (storage, offset, size, stride,
// requires_grad, OrderedDict())) with storage = BINPERSID(('storage', torch.BFloat16Storage,
// key, location, numel)). Nested dicts are flattened with '.': "image_proj.<key>",
// "ip_adapter.<key>". Non-tensor values (ints, strings) are skipped.
//
// Only these globals are accepted — anything else is an error, so a hostile pickle cannot do
// anything but fail: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter, torch.{Float,BFloat16,Half,Double}Storage.
//
// Direct use or conversion: `cameo train` reads the .bin directly for model.adapter_init
// (torch_import_load); `cameo import-bin IN OUT` converts it once to safetensors
// (torch_import_to_safetensors), which then loads faster (memory-mapped, no pickle).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "autograd/tensor.h"
#include "models/params.h"

typedef struct ti_tensor {
    char name[256];          // flattened key, e.g. "ip_adapter.0.to_k_ip.weight"
    cm_dtype dtype;          // CM_F32, CM_BF16, CM_F16 or CM_F64
    int ndim;
    int64_t shape[CM_MAX_DIMS];
    int64_t stride[CM_MAX_DIMS];   // in elements
    int64_t offset;                // storage offset, in elements
    const uint8_t *storage;        // the storage's bytes (inside the mapping)
    int64_t storage_numel;
    const uint8_t *data;           // storage + offset * element size
    uint64_t storage_bytes;        // the storage's record: its size, crc32 and name (torch_import_verify)
    uint32_t storage_crc;
    char storage_entry[160];
    bool contiguous;               // row-major dense from data
} ti_tensor;

typedef struct ti_file ti_file;

#define TI_NO_CRC 1u  // skip the crc32 check of data.pkl (tests that mutate the pickle)

// Maps and parses a file. NULL with "<path>: <problem>" in err on any malformed input
// (not a zip, compressed entry, truncated, unknown opcode, disallowed global, bad tensor view).
ti_file *torch_import_open(const char *path, char *err, size_t errlen);
// whether the file is a zip archive ("PK\3\4"), as torch.save writes (the released adapter's
// .bin, cameo export's .bin / .pt / .pth), or a legacy (pre-1.6) torch.save file, which
// torch_import_open refuses by name: its content decides, not its name
bool torch_import_is_torch_file(const char *path);
// same over a caller's buffer (must outlive the ti_file); name is used in messages
ti_file *torch_import_open_memory(const void *buf, size_t size, const char *name, unsigned flags, char *err,
                                  size_t errlen);
int torch_import_count(const ti_file *f);
const ti_tensor *torch_import_at(const ti_file *f, int i);              // pickle order
const ti_tensor *torch_import_find(const ti_file *f, const char *name); // NULL when absent
void torch_import_close(ti_file *f);  // NULL ok

int64_t ti_numel(const ti_tensor *t);
// copies the view into dst, contiguous row-major, converted to dt (F32, BF16, F16, F64)
void torch_import_copy(const ti_tensor *t, cm_dtype dt, void *dst);

// Checks the crc32 of every storage record the tensors use (the open checks data.pkl's only and
// reads no tensor data): a damaged download is an error naming the record and a tensor in it. 0,
// or -1 with err set. torch_import_load, torch_import_to_safetensors and torch_import_inspect call it.
// A file whose records carry no crc32 at all (torch.save after
// torch.serialization.set_crc32_options(False): every field 0; torch.load reads it) has nothing to
// check: it opens, and verify warns once and returns 0 (torch_import_has_crc is false).
int torch_import_verify(const ti_file *f, char *err, size_t errlen);
bool torch_import_has_crc(const ti_file *f);

// Loads the tensors into the registries' parameters by name (converted to each parameter's dtype
// and device). Every parameter of the registries must be in the file (missing or misshapen:
// an error naming the key, expected and found shape); extra file tensors are an error when
// strict, else counted in *n_extra (may be NULL). 0, or -1 with err set.
int torch_import_load(cm_params **regs, int n_regs, const char *path, bool strict, int *n_extra, char *err,
                      size_t errlen);

// Writes every tensor to a safetensors file (atomically), dtype and names kept, views made
// contiguous; metadata {"format": "pt", "source": <file name>}. 0, or -1 with err set.
int torch_import_to_safetensors(const char *in, const char *out, char *err, size_t errlen);

// `cameo inspect FILE.bin` and `cameo import-bin --list FILE.bin`: a summary (tensors, parameters,
// dtypes, top-level parts, every storage's crc32 checked) and, unless quiet, one line per tensor.
// cmd: the command its errors name ("inspect", "import-bin"). Returns the exit code (1: unreadable or damaged).
int torch_import_inspect(const char *cmd, const char *path, bool quiet);
// `cameo import-bin IN.bin OUT.safetensors` (or `--list IN.bin`): returns the exit code
int torch_import_cli(int argc, char **argv);

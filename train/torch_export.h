// torch_export.h — writes tensors as a torch.save file (the zip format torch.load reads, with
// weights_only=True too), such as an InstantCharacter adapter for the released pipeline, which
// loads its `subject_ip_adapter_path` with torch.load and takes state_dict["image_proj"] and
// state_dict["ip_adapter"]. The inverse of torch_import.h.
// defines: te_tensor, torch_export_save, TE_ZIP64.
//
// The file: a ZIP (every entry stored, its data 64-byte aligned as torch.save aligns it; ZIP64
// records where an offset passes 4 GiB — the full adapter is 5.6 GB) of archive/data.pkl,
// archive/byteorder ("little"), archive/data/<i> (one storage per tensor, raw little-endian),
// archive/version ("3"). data.pkl (pickle protocol 2) holds a dict of OrderedDicts: a tensor
// named "<part>.<key>" is entry <key> of top-level entry <part> (parts in order of first
// appearance), rebuilt by torch._utils._rebuild_tensor_v2 from a storage
// ('storage', torch.<BFloat16|Float|Half|Double>Storage, '<i>', 'cpu', numel).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "autograd/tensor.h"

typedef struct te_tensor {
    const char *name;      // "<part>.<key>", e.g. "ip_adapter.0.to_k_ip.weight"
    cm_dtype dtype;        // CM_BF16, CM_F32, CM_F16 or CM_F64
    int ndim;
    const int64_t *shape;  // [ndim]
    const void *data;      // contiguous row-major
} te_tensor;

#define TE_ZIP64 1u  // ZIP64 records for every entry even in a small file (tests: the > 4 GiB layout)

// Writes the n tensors to path atomically (PATH.tmp, fsync, rename). 0, or -1 with err set (a
// name without a part, a dtype torch has no storage for, a write that failed).
int torch_export_save(const char *path, const te_tensor *t, int n, unsigned flags, char *err, size_t errlen);

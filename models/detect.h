// detect.h — what the models' shape detection (siglip_detect, clip_text_detect, t5_detect, ...)
// shares: finding a tensor it needs in a weights index, with the message when it is not there.
// defines: detect_need.
#pragma once
#include <stddef.h>
#include "models/safetensors.h"

// the entry name in ix when it has ndim dims; else NULL and err says what is wrong: "not <what>: no
// tensor "<name>"" (what: "a SigLIP vision tower", "a T5 encoder", ...) or "<name>: expected N dims,
// found M".
const st_entry *detect_need(const st_index *ix, const char *name, int ndim, const char *what, char *err, size_t errlen);

// tags.h — a sweep folder's checkpoint tags (images/TAG/, the summary's labels), kept in
// DIR/tags.json (tag -> source: the absolute folder or adapter file, "#ema" after it with --ema),
// so that a source evaluated by a later command into the same folder under a name another source
// already has (two runs' step-4, two folders' adapter.safetensors) gets a tag of its own.
// defines: eval_tags_assign
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

// tags[i] for srcs[i]: the tag the folder already gives that source; else bases[i], or bases[i]-2,
// -3, ... when another source has that tag. Folders older than tags.json: the tags of
// results.jsonl's lines count as recorded. write: record the new ones (rank 0; the other ranks
// read what it wrote). 0, or -1 with err.
int eval_tags_assign(const char *outdir, int n, char srcs[][PATH_MAX + 8], char bases[][96], bool write, char tags[][96], char *err,
                     size_t errlen);

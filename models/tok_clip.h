// tok_clip.h — CLIP's byte-level BPE tokenizer, read from a tokenizer.json (BPE model) or from the
// vocab.json + merges.txt pair that FLUX's tokenizer/ folder holds. The pipeline is the one
// transformers' CLIPTokenizer (tokenizers library) runs: NFC, \s+ -> " ", lowercase; CLIP's split
// regex ('s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+); GPT-2 byte -> unicode mapping;
// "</w>" on the last symbol of a word; merges by rank; <|startoftext|> ... <|endoftext|> around.
// defines: clip_tok, clip_tok_* functions.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct clip_tok clip_tok;

// path: a tokenizer.json, or a folder holding tokenizer.json or vocab.json + merges.txt
clip_tok *clip_tok_load(const char *path, char *err, size_t errlen);
void clip_tok_free(clip_tok *t);

// all ids with bos/eos, no truncation or padding; malloc'd, length in *n
int32_t *clip_tok_encode(clip_tok *t, const char *text, int *n);
// FLUX: padding="max_length", max_length=77, truncation=True: [bos, up to max_len-2 ids, eos, pad...].
// Returns the count of non-pad ids; a truncation is reported on stderr once per tokenizer.
int clip_tok_encode_padded(clip_tok *t, const char *text, int max_len, int32_t *out, bool *truncated);

int clip_tok_vocab_size(const clip_tok *t);
int32_t clip_tok_bos_id(const clip_tok *t);
int32_t clip_tok_eos_id(const clip_tok *t);
int32_t clip_tok_pad_id(const clip_tok *t);  // default: <|endoftext|> (FLUX's CLIP-L pad_token)
void clip_tok_set_pad_id(clip_tok *t, int32_t id);

// tok_t5.h — T5's SentencePiece unigram tokenizer, read from the published tokenizer.json (the
// Hugging Face tokenizers format: Unigram model with scores, Precompiled charsmap normalizer,
// WhitespaceSplit + Metaspace("▁") pre-tokenizer, "$A </s>" template). Output ids equal those of
// transformers' T5TokenizerFast (tokenizers library) exactly: Viterbi over the vocabulary's scores,
// unknown characters scored min_score - 10 and consecutive unknowns fused into one <unk>.
// defines: t5_tok, t5_tok_* functions.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct t5_tok t5_tok;

// path: a tokenizer.json or a folder holding one (FLUX: <root>/tokenizer_2). NULL and err on failure
// (a missing file, a tokenizer of another kind, an unsupported normalizer or pre-tokenizer).
t5_tok *t5_tok_load(const char *path, char *err, size_t errlen);
void t5_tok_free(t5_tok *t);

// all ids of text with the post-processor's specials (</s>), no truncation or padding;
// returns a malloc'd array (caller frees) and its length in *n
int32_t *t5_tok_encode(t5_tok *t, const char *text, int *n);
// what the FLUX pipeline feeds T5: truncated to max_len (the last id stays </s>) and padded with
// <pad> (id 0) to exactly max_len ids in out. Returns the count of non-pad ids. A truncation is
// reported on stderr once per tokenizer (as the pipeline warns) and in *truncated (may be NULL).
int t5_tok_encode_padded(t5_tok *t, const char *text, int max_len, int32_t *out, bool *truncated);

int t5_tok_vocab_size(const t5_tok *t);  // model vocabulary (added tokens included when inside it)
int32_t t5_tok_pad_id(const t5_tok *t);
int32_t t5_tok_eos_id(const t5_tok *t);
int32_t t5_tok_unk_id(const t5_tok *t);

#!/usr/bin/env python3
"""Reference fixtures for the text encoders and their tokenizers (spec §5.7).

Tokenizers (trained here on a generated corpus, so no hub download is needed):
  tests/fixtures/t5/tokenizer.json   SentencePiece unigram (nmt_nfkc precompiled charsmap) wrapped the
                                     way transformers' T5Tokenizer wraps it: Precompiled normalizer,
                                     WhitespaceSplit + Metaspace("▁", always) pre-tokenizer,
                                     "$A </s>" template, <pad>=0 </s>=1 <unk>=2, 4 <extra_id_N>.
  tests/fixtures/t5/tokens.json      {"max_length": 512, "cases": [{"text", "ids", "padded"}]}
  tests/fixtures/t5/variant/         the same unigram with Strip + Replace(" {2,}") normalizers and a
                                     Metaspace("first", no split): tokenizer.json, tokens.json (max 64)
  tests/fixtures/clip/tokenizer.json byte-level BPE with CLIP's pipeline (NFC, \\s+ -> " ", lowercase,
                                     CLIP split regex, ByteLevel, "</w>" suffix, bos/eos last in the vocab)
  tests/fixtures/clip/vocab.json + merges.txt   the same BPE in the layout FLUX's tokenizer/ folder uses
  tests/fixtures/clip/tokens.json    {"max_length": 77, "cases": [...]}  (padded with the pad token = eos)
  "ids" are the tokenizer's ids without padding or truncation (special tokens added); "padded" is what
  the FLUX pipeline asks for: padding="max_length", truncation=True.

Models (tiny random configs, the transformers reference code):
  tests/fixtures/t5/weights.safetensors, io.safetensors    T5EncoderModel (v1.1: gated-gelu, no biases)
    io: ids [B,L] i32, embeds [B,L,D], hidden [B,L,D], w_hidden [B,L,D], grad_embeds [B,L,D],
        buckets [1201] i32 (relative_position_bucket for relative positions -600..600)
    loss = sum(hidden * w_hidden), grad w.r.t. the input embeddings (inputs_embeds)
  tests/fixtures/clip/weights.safetensors, config.json, io.safetensors  CLIPTextModel (eos_token_id 2: legacy pooling)
    io: ids [B,L] i32, hidden, pooled [B,D] (argmax-of-ids rule), pooled_eos [B,D] (first id == 5 rule),
        w_hidden, w_pooled, grad_embeds [B,L,D] (w.r.t. the token embeddings, before positions are added)
    loss = sum(hidden * w_hidden) + sum(pooled * w_pooled)
Run from the repository root: python3 scripts/fixtures_text.py   (needs sentencepiece, tokenizers)
"""
import io
import json
import os
import random

import torch
from safetensors.torch import save_file

T5_DIR = "tests/fixtures/t5"
CLIP_DIR = "tests/fixtures/clip"

WORDS = ("the a an of in on with and photo portrait painting of cat dog bird wearing red blue green "
         "golden hat coat sword castle forest city night light rain girl boy old young knight anime "
         "character smiling standing running holding flower sky cloud river mountain "
         "café naïve résumé façade über straße garçon señor crème brûlée "
         "東京 タワー 夜景 の 中文 字符 日本語 テキスト 한국어 텍스트 ελληνικά κείμενο русский текст "
         "don't it's we're they've i'm he'd you'll 12 345 2024 3.14 100% #1 @home (x) [y] {z}").split()

TEXTS = [
    "a photo of a cat",
    "A Photo Of A CAT, wearing a Hat!",
    "Café naïve résumé façade crème brûlée",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301",                    # decomposed accents (NFC/NFKC compose)
    "東京タワーの夜景",
    "中文字符和日本語のテキスト、한국어 텍스트",
    "Ελληνικά κείμενο και Русский текст",
    "emoji 😀🎉 family 👨‍👩‍👧 flag 🇫🇷🇩🇪 thumbs 👍🏽 keycap 1️⃣",
    "multiple    spaces   between     words",
    "tabs\tand\nnewlines\r\nmixed \t\n end",
    "   leading and trailing   ",
    "",
    " ",
    "\t\n",
    "don't won't it's we're I'll they've I'm he'd",
    "numbers 12345 3.14159 1,000,000 and 2024-01-31",
    "punctuation!!! ??? ... (brackets) [x] {y} <z> @#$%^&*_+=~`|\\/",
    "fullwidth ＡＢＣ１２３ ligatures ﬁ ﬂ roman Ⅻ superscript x² ½ ㍿ ㈱",
    "İstanbul ß ẞ Ǆ ﬀ ΣΑΣ ǅungla",
    "zero\u200bwidth non\u00a0breaking soft\u00adhyphen ideographic\u3000space",
    "controls \x07bell \x0bvt \x0cff \x1fus \x7fdel",
    "combining only \u0301\u0301 and Ａ\u0301 and e\u0301\u0302\u0323",
    "Hangul jamo \u1100\u1161\u11a8 and syllable 각",
    "<extra_id_0> special </s> tokens <pad> and <unk>",
    "<|startoftext|>hi<|endoftext|> and <|ENDOFTEXT|>",
    "rare chars ☃ ♞ ∮ ⅋ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀 and unseen ĸ ŉ",
    "a character with a red coat, " * 40,                            # far beyond 77 (CLIP)
    ("long prompt: a knight standing in a golden forest at night, holding a sword, anime style. "
     "東京タワーの夜景 " + "façade ") * 30,                          # far beyond 512 (T5)
]


def corpus(seed=0, n=4000):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(3, 14)):
            w = rng.choice(WORDS)
            r = rng.random()
            if r < 0.15:
                w = w.capitalize()
            elif r < 0.2:
                w = w.upper()
            if rng.random() < 0.1:
                w += rng.choice(",.!?:;")
            words.append(w)
        lines.append(" ".join(words))
    lines.append("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    return lines


# ----------------------------------------------------------------------------- tokenizers

def make_t5_tokenizer(lines):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from transformers import T5Tokenizer
    path = "/tmp/cameo_t5_corpus.txt"
    with open(path, "w") as f:
        f.write("\n".join(lines))
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(input=path, model_writer=buf, vocab_size=320, model_type="unigram",
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, normalization_rule_name="nmt_nfkc",
                                   hard_vocab_limit=False, character_coverage=0.9995, seed_sentencepiece_size=20000,
                                   num_threads=1, minloglevel=2)
    proto = pb.ModelProto()
    proto.ParseFromString(buf.getvalue())
    vocab = [(p.piece, float(p.score) if p.type == 1 else 0.0) for p in proto.pieces]
    extra = 4
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(extra - 1, -1, -1)]
    tok = T5Tokenizer(vocab=vocab, _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap,
                      extra_ids=extra)
    tok.save_pretrained("/tmp/cameo_t5_tok")
    os.replace("/tmp/cameo_t5_tok/tokenizer.json", f"{T5_DIR}/tokenizer.json")


def make_clip_tokenizer(lines):
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import CLIPTokenizer
    t = Tokenizer(BPE(unk_token="<|endoftext|>", continuing_subword_prefix="", end_of_word_suffix="</w>",
                      fuse_unk=False))
    t.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                         normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    # a small deterministic BPE trainer (the tokenizers library's BpeTrainer breaks count ties in
    # hash order, so its output changes from run to run): most frequent pair, ties by the pair's text
    freqs = {}
    for line in lines:
        for w, _ in t.pre_tokenizer.pre_tokenize_str(t.normalizer.normalize_str(line)):
            freqs[w] = freqs.get(w, 0) + 1
    words = [(list(w[:-1]) + [w[-1] + "</w>"], n) for w, n in sorted(freqs.items())]
    alphabet = [c for c in pre_tokenizers.ByteLevel.alphabet()]
    alphabet = sorted(alphabet, key=ord)
    vocab_list = alphabet + [c + "</w>" for c in alphabet]
    merges = []
    for _ in range(260):
        pairs = {}
        for sy, n in words:
            for p in zip(sy, sy[1:]):
                pairs[p] = pairs.get(p, 0) + n
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        if pairs[best] < 2:
            break
        merges.append(best)
        vocab_list.append(best[0] + best[1])
        for k, (sy, n) in enumerate(words):
            out, i = [], 0
            while i < len(sy):
                if i + 1 < len(sy) and (sy[i], sy[i + 1]) == best:
                    out.append(sy[i] + sy[i + 1]); i += 2
                else:
                    out.append(sy[i]); i += 1
            words[k] = (out, n)
    model = {"vocab": {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}, "merges": merges}
    # CLIP keeps the two special tokens at the end of the vocabulary (49406, 49407)
    vocab = {k: v for k, v in sorted(model["vocab"].items(), key=lambda kv: kv[1])}
    n = len(vocab)
    vocab["<|startoftext|>"] = n
    vocab["<|endoftext|>"] = n + 1
    merges = [tuple(m) for m in model["merges"]]
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    tok.save_pretrained("/tmp/cameo_clip_tok")
    os.replace("/tmp/cameo_clip_tok/tokenizer.json", f"{CLIP_DIR}/tokenizer.json")
    with open(f"{CLIP_DIR}/vocab.json", "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(f"{CLIP_DIR}/merges.txt", "w") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")


def write_variant_cases(path_in, path_out, cases_out, max_length):
    """The same unigram model behind other published normalizer / pre-tokenizer settings: the newer
    transformers converter's Strip(right) + Replace(" {2,}", "▁") (without the charsmap, to stay small)
    and a Metaspace with prepend_scheme "first" and no split."""
    from tokenizers import Tokenizer
    j = json.load(open(path_in))
    j["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Strip", "strip_left": False, "strip_right": True},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u2581"}]}
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    with open(path_out, "w") as f:
        json.dump(j, f, ensure_ascii=False)
    raw = Tokenizer.from_file(path_out)
    padded = Tokenizer.from_file(path_out)
    padded.enable_truncation(max_length=max_length)
    padded.enable_padding(length=max_length, pad_id=0, pad_token="<pad>")
    cases = [{"text": t, "ids": raw.encode(t).ids, "padded": padded.encode(t).ids} for t in TEXTS]
    with open(cases_out, "w") as f:
        json.dump({"max_length": max_length, "pad_id": 0, "cases": cases}, f, ensure_ascii=False)
        f.write("\n")


def write_cases(tok, path, max_length):
    from tokenizers import Tokenizer
    raw = Tokenizer.from_file(os.path.join(os.path.dirname(path), "tokenizer.json"))
    cases = []
    for text in TEXTS:
        ids = raw.encode(text).ids
        padded = tok(text, padding="max_length", max_length=max_length, truncation=True)["input_ids"]
        assert len(padded) == max_length
        cases.append({"text": text, "ids": ids, "padded": padded})
    with open(path, "w") as f:
        json.dump({"max_length": max_length, "pad_id": tok.pad_token_id, "cases": cases}, f, ensure_ascii=False)
        f.write("\n")
    return cases


# ----------------------------------------------------------------------------- models

def fill_(model, seed, emb_std=1.0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embedding" in name or "shared" in name:
                p.copy_(emb_std * torch.randn(p.shape, generator=g))
            else:  # fan-in scaled so activations stay O(1) through the depth
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)


def make_t5_model():
    from transformers import T5Config, T5EncoderModel
    from transformers.models.t5.modeling_t5 import T5Attention
    cfg = T5Config(vocab_size=96, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=32, relative_attention_max_distance=128,
                   dropout_rate=0.0, layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu",
                   tie_word_embeddings=False)
    torch.manual_seed(0)
    m = T5EncoderModel(cfg).eval()
    fill_(m, 11)
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    sd.pop("encoder.embed_tokens.weight", None)  # tied to shared.weight; the published files carry only shared
    save_file(sd, f"{T5_DIR}/weights.safetensors")

    g = torch.Generator().manual_seed(7)
    B, L = 2, 40  # relative distances up to 39: exact and log buckets, both directions
    ids = torch.randint(3, cfg.vocab_size, (B, L), generator=g)
    ids[:, -1] = 1      # </s>
    ids[1, 30:] = 0     # <pad> tail (no mask, as FLUX)
    embeds = m.shared(ids).detach().clone().requires_grad_(True)
    hidden = m(inputs_embeds=embeds).last_hidden_state
    ref = m(input_ids=ids).last_hidden_state
    assert torch.allclose(hidden, ref)
    w = torch.randn(hidden.shape, generator=g)
    (hidden * w).sum().backward()
    rp = torch.arange(-600, 601)
    buckets = T5Attention._relative_position_bucket(rp, bidirectional=True, num_buckets=32, max_distance=128)
    save_file({"ids": ids.to(torch.int32), "embeds": embeds.detach(), "hidden": hidden.detach(),
               "w_hidden": w, "grad_embeds": embeds.grad, "buckets": buckets.to(torch.int32)},
              f"{T5_DIR}/io.safetensors")


def make_clip_model():
    from transformers import CLIPTextConfig, CLIPTextModel
    cfg = CLIPTextConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, hidden_act="quick_gelu",
                         layer_norm_eps=1e-5, eos_token_id=2, bos_token_id=0, pad_token_id=1,
                         attention_dropout=0.0)
    torch.manual_seed(0)
    m = CLIPTextModel(cfg).eval()
    fill_(m, 13, emb_std=0.5)
    tm = getattr(m, "text_model", m)  # transformers 5 flattens CLIPTextModel; the published files say "text_model."
    sd = {("text_model." + k if not k.startswith("text_model.") else k): v.contiguous()
          for k, v in m.state_dict().items()}
    save_file(sd, f"{CLIP_DIR}/weights.safetensors")
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "max_position_embeddings", "hidden_act", "layer_norm_eps", "eos_token_id", "bos_token_id", "pad_token_id")
    with open(f"{CLIP_DIR}/config.json", "w") as f:  # heads and eos_token_id are not in the shapes
        json.dump({"architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
                   **{k: getattr(cfg, k) for k in keep}}, f, indent=2)
        f.write("\n")

    g = torch.Generator().manual_seed(9)
    B, L = 2, 16
    bos, eos = 98, 99  # as in CLIP: the two special ids are the largest
    ids = torch.randint(3, 98, (B, L), generator=g)
    ids[:, 0] = bos
    ids[0, 9] = eos; ids[0, 10:] = eos      # padded with eos (FLUX's CLIP pad token)
    ids[1, 15] = eos
    ids[1, 4] = 5; ids[1, 11] = 5           # id 5 plays eos for the first-occurrence rule
    ids[0, 6] = 5
    captured = {}

    def hook(_mod, _inp, out):
        out.retain_grad()
        captured["emb"] = out
        return out
    h = tm.embeddings.token_embedding.register_forward_hook(hook)
    out = m(input_ids=ids)
    h.remove()
    hidden, pooled = out.last_hidden_state, out.pooler_output
    wh = torch.randn(hidden.shape, generator=g)
    wp = torch.randn(pooled.shape, generator=g)
    ((hidden * wh).sum() + (pooled * wp).sum()).backward()
    with torch.no_grad():
        tm.eos_token_id = 5
        pooled_eos = m(input_ids=ids).pooler_output
        tm.eos_token_id = 2
    save_file({"ids": ids.to(torch.int32), "hidden": hidden.detach(), "pooled": pooled.detach(),
               "pooled_eos": pooled_eos, "w_hidden": wh, "w_pooled": wp,
               "grad_embeds": captured["emb"].grad}, f"{CLIP_DIR}/io.safetensors")


def main():
    os.makedirs(T5_DIR, exist_ok=True)
    os.makedirs(CLIP_DIR, exist_ok=True)
    os.makedirs(f"{T5_DIR}/variant", exist_ok=True)
    lines = corpus()
    from transformers import CLIPTokenizer, T5Tokenizer
    make_t5_tokenizer(lines)
    t5 = T5Tokenizer(tokenizer_file=f"{T5_DIR}/tokenizer.json", extra_ids=0)
    write_cases(t5, f"{T5_DIR}/tokens.json", 512)
    write_variant_cases(f"{T5_DIR}/tokenizer.json", f"{T5_DIR}/variant/tokenizer.json", f"{T5_DIR}/variant/tokens.json", 64)
    make_clip_tokenizer(lines)
    clip = CLIPTokenizer(tokenizer_file=f"{CLIP_DIR}/tokenizer.json")
    write_cases(clip, f"{CLIP_DIR}/tokens.json", 77)
    make_t5_model()
    make_clip_model()


if __name__ == "__main__":
    main()

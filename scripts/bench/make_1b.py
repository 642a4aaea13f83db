#!/usr/bin/env python3
"""Llama-3.2-1B-shaped random-weight GGUFs for speed benchmarks (NOT for correctness tests).

Shape = meta-llama/Llama-3.2-1B: hidden 2048, 16 layers, 32 heads / 8 KV heads (head_dim 64),
FFN 8192, vocab 128256, tied embeddings, rope_theta 500000 with llama3 rope scaling
(factor 32, low 1, high 4, original ctx 8192), max_position_embeddings 131072  -> ~1.24 B params.

Tokenizer: a small byte-level BPE trained on a built-in corpus with the Llama 3 pre-tokenizer regex
(same approach as hearth's testdata/models/make_models.py), then padded with synthetic NORMAL
tokens ("Ġ" + pseudo-words, reachable by no merge) up to 128000, plus Llama 3's 256 special
tokens at ids 128000..128255 (real names and order). So the embedding/output matrix has the real
1B size, prompts only ever use the ~1k trained tokens, and sampled tokens detokenize to text.

Weights: N(0, 0.02) for every matrix (HF's initializer_range), 1.0 for RMSNorm weights; fixed seed.
Conversion: llama.cpp's convert_hf_to_gguf.py (from the llama-cpp-python 0.3.36 sdist,
llama.cpp@0c1e57098) with the BPE pre-tokenizer hash check forced to 'llama-bpe', outtype f16;
then llama-quantize -> Q8_0 and Q4_K_M.

Called by scripts/bench/compare.sh (which builds llama.cpp from the sdist and sets up a venv with
torch, transformers, tokenizers, numpy, safetensors); by hand:
  python scripts/bench/make_1b.py --out DIR --llama-cpp-dir DIR/llama_cpp_python-0.3.36/vendor/llama.cpp \
      --quantize DIR/build/bin/llama-quantize [--quants q4_k_m,q8_0] [--keep-hf DIR]
Files that already exist in --out are kept (delete them to regenerate).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 1234
STD = 0.02
N_VOCAB = 128256
N_SPECIAL = 256
TRAINED_VOCAB = 1000  # the corpus is tiny; the trainer stops well below this anyway

# The training corpus and llama.cpp's converter shim are the test models' own
# (testdata/models/make_models.py imports only the standard library at load time).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "testdata" / "models"))
from make_models import CONVERTER_SHIM, CORPUS  # noqa: E402

LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Llama 3.x special tokens, ids 128000..128255 in the real order.
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
            "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
SPECIALS += [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + N_SPECIAL - len(SPECIALS))]
assert len(SPECIALS) == N_SPECIAL

CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)



def log(*a):
    print("[make_1b]", *a, file=sys.stderr, flush=True)


def pseudo_words():
    """Deterministic unique pseudo-words: 'ka', 'kalo', 'kalomi', ... (consonant-vowel syllables)."""
    cons, vows = "bdfgklmnprstvz", "aeiou"
    syl = [c + v for c in cons for v in vows]  # 70 syllables
    n = 2
    while True:
        idx = [0] * n
        while True:
            yield "".join(syl[i] for i in idx)
            k = n - 1
            while k >= 0 and idx[k] == len(syl) - 1:
                idx[k] = 0
                k -= 1
            if k < 0:
                break
            idx[k] += 1
        n += 1


def build_tokenizer(d: Path) -> dict:
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors,
                            trainers)
    tok = Tokenizer(models.BPE(ignore_merges=True, byte_fallback=False, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=TRAINED_VOCAB, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator([l + "\n" for l in CORPUS.split("\n")], trainer=trainer)
    tj = json.loads(tok.to_str())
    vocab = tj["model"]["vocab"]
    n_trained = len(vocab)
    # pad the BPE vocab with synthetic normal tokens up to 128000 (unreachable by merges)
    gen = pseudo_words()
    while len(vocab) < N_VOCAB - N_SPECIAL:
        w = "Ġ" + next(gen)
        if w not in vocab:
            vocab[w] = len(vocab)
    tj["model"]["vocab"] = vocab
    tok = Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    tok.save(str(d / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in SPECIALS}
    assert ids["<|begin_of_text|>"] == 128000 and ids["<|eot_id|>"] == 128009, ids["<|begin_of_text|>"]
    assert tok.get_vocab_size(with_added_tokens=True) == N_VOCAB
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",  # as Llama-3.2-1B-Instruct
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {str(ids[t]): {"content": t, "lstrip": False, "normalized": False,
                                               "rstrip": False, "single_word": False, "special": True}
                                 for t in SPECIALS},
    }
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    (d / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, indent=2))
    log(f"tokenizer: {n_trained} trained BPE tokens + {N_VOCAB - N_SPECIAL - n_trained} synthetic "
        f"+ {N_SPECIAL} specials = {N_VOCAB}")
    return dict(bos=ids["<|begin_of_text|>"],
                eos_ids=[ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]])


def build_model(d: Path, tk: dict) -> None:
    import torch
    import transformers as T
    cfg = T.LlamaConfig(
        vocab_size=N_VOCAB, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, hidden_act="silu",
        max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True,
        initializer_range=STD, attention_bias=False, mlp_bias=False,
        bos_token_id=tk["bos"], eos_token_id=tk["eos_ids"],
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192})
    torch.manual_seed(SEED)
    t0 = time.time()
    model = T.LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.ndim == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, STD, generator=g)
    model = model.to(torch.float16)
    n = sum(p.numel() for p in model.parameters())
    log(f"model: {n / 1e9:.3f} B params (tied), init {time.time() - t0:.0f}s")
    model.save_pretrained(str(d), safe_serialization=True)
    T.GenerationConfig(bos_token_id=tk["bos"], eos_token_id=tk["eos_ids"]).save_pretrained(str(d))


def run(cmd, env=None):
    log("$", " ".join("<converter shim>" if "\n" in str(c) else str(c) for c in cmd))
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-8000:])
        sys.exit(f"failed: {cmd[0]}")
    log(f"  done in {time.time() - t0:.0f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="where llama1b-<type>.gguf are written")
    ap.add_argument("--llama-cpp-dir", type=Path, required=True,
                    help="llama.cpp tree (convert_hf_to_gguf.py, gguf-py), e.g. from the llama-cpp-python sdist")
    ap.add_argument("--quantize", type=Path, required=True, help="llama-quantize binary")
    ap.add_argument("--quants", default="q8_0,q4_k_m", help="quantized types to make from the f16 file")
    ap.add_argument("--keep-hf", type=Path, default=None, help="also keep the HF checkpoint here")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.out.mkdir(parents=True, exist_ok=True)
    f16 = args.out / "llama1b-f16.gguf"
    if f16.is_file():
        log(f"{f16} exists, kept")
    else:
        import torch
        torch.set_num_threads(min(4, os.cpu_count() or 1))
        with tempfile.TemporaryDirectory(prefix="llama1b-hf-", dir=str(args.out)) as tmp:
            # fixed directory name: the converter derives general.basename/finetune from it
            hf = Path(args.keep_hf or Path(tmp) / "llama1b-random")
            hf.mkdir(parents=True, exist_ok=True)
            tk = build_tokenizer(hf)
            build_model(hf, tk)
            env = dict(os.environ, HEARTH_LCPP=str(args.llama_cpp_dir), HEARTH_TOKPRE="llama-bpe", HF_HUB_OFFLINE="1",
                       TRANSFORMERS_OFFLINE="1")
            tmp_out = Path(tmp) / f16.name  # moved into place only once complete
            run([sys.executable, "-c", CONVERTER_SHIM, str(hf), "--outtype", "f16", "--outfile", str(tmp_out),
                 "--model-name", "llama1b-random"], env=env)
            shutil.move(str(tmp_out), str(f16))
    for q in [q.strip().upper() for q in args.quants.split(",") if q.strip()]:
        if q == "F16":
            continue
        dst = args.out / f"llama1b-{q.lower()}.gguf"
        if dst.is_file():
            log(f"{dst} exists, kept")
            continue
        part = dst.with_name(dst.name + ".partial")
        run([str(args.quantize), str(f16), str(part), q, str(min(4, os.cpu_count() or 1))])
        part.rename(dst)
    for p in sorted(args.out.glob("llama1b-*.gguf")):
        log(f"{p}: {p.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

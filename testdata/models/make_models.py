#!/usr/bin/env python3
"""Tiny random-weight test models (GGUF) + Hugging Face transformers reference outputs.

For each family (llama3, qwen3, gemma3, gemma4, llama2) this script, deterministically:
  1. trains a tiny tokenizer on the corpus embedded below (byte-level BPE with the family's
     GPT-2-style pre-tokenizer regex for Llama 3 / Qwen 3; a SentencePiece BPE model with byte
     fallback for Gemma 3 and, with Llama 2's dummy prefix, for Llama 2; a "▁"-normalised BPE with
     byte fallback for Gemma 4, which is what llama.cpp's converter expects for each arch), adds the
     family's special tokens and a short real-style chat template;
  2. builds a tiny random-weight checkpoint (fixed seed) of the family's transformers class and
     saves it to a temporary directory;
  3. converts it with llama.cpp's own convert_hf_to_gguf.py (taken from the llama.cpp tree vendored
     in the PyPI sdist of llama-cpp-python, downloaded at run time, never copied into the repo)
     to <family>-f32.gguf, <family>-f16.gguf and <family>-q8_0.gguf (llama2: f32 and q8_0 only);
  4. checks every GGUF tensor against the checkpoint with gguf-py's reader, and checks that the
     tokenizer llama.cpp will run (re-implemented here in Python from the GGUF's own vocab,
     merges / scores) gives the same ids as the HF tokenizer on every prompt;
  5. records transformers reference outputs (torch CPU, float32, eager attention) in
     <family>.reference.json.

Pinned environment (the committed files were produced with exactly these; see README.md):
  Python              3.11.7
  torch               2.15.0   (CPU use only)
  transformers        5.24.0
  tokenizers          0.23.3
  sentencepiece       0.2.3
  numpy               2.4.6
  safetensors         0.8.0
  protobuf            7.36.2
  jinja2              3.1.6
  regex               2026.11.19 (pulled in by transformers; used for the llama.cpp tokenizer emulation)
  pyyaml              6.0.4    (pulled in by transformers; needed by gguf-py)
  tqdm                4.70.1   (pulled in by transformers; needed by gguf-py)
  llama-cpp-python    0.3.36   sdist: only its vendored llama.cpp tree is used
                               (convert_hf_to_gguf.py + gguf-py 0.19.0), nothing is compiled

usage:
  python make_models.py [--families llama3,qwen3,gemma3,gemma4,llama2] [--out DIR]
                        [--llama-cpp-dir DIR] [--allow-version-mismatch]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PINS = {
    "torch": "2.15.0",
    "transformers": "5.24.0",
    "tokenizers": "0.23.3",
    "sentencepiece": "0.2.3",
    "numpy": "2.4.6",
    "safetensors": "0.8.0",
    "protobuf": "7.36.2",
    "jinja2": "3.1.6",
    "regex": "2026.11.19",
}
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
# From the sdist's CHANGELOG.md ("update llama.cpp to ggml-org/llama.cpp@<commit>") for 0.3.36.
LLAMA_CPP_COMMIT = "0c1e57098"

HERE = Path(__file__).resolve().parent
SEED = 1234
# seed = SEED + offset. The first four are the families' sorted order (how the seeds were first
# assigned); families added later take the next offsets, so existing fixtures keep their seeds.
SEED_OFFSET = {"gemma3": 0, "gemma4": 1, "llama3": 2, "qwen3": 3, "llama2": 4}
N_NEW_TOKENS = 16
TOPK = 5
OUTTYPES = ["f32", "f16", "q8_0"]
OUTTYPES_FOR = {"llama2": ["f32", "q8_0"]}  # families added later: no F16 file (default: OUTTYPES)

# ---------------------------------------------------------------------------------------------
# Training corpus (fixed, built in). English + French + a little of everything else.
# ---------------------------------------------------------------------------------------------
CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.
Hello, world! Hello again, world. How are you today? I am fine, thank you.
You are a helpful assistant. Answer the question of the user in a short and friendly way.
The user asks a question and the assistant answers it. The model thinks before it answers.
What is the capital of France? The capital of France is Paris.
What is the capital of Italy? The capital of Italy is Rome.
What is the capital of Germany? The capital of Germany is Berlin.
Write a short poem about the sea, the wind and the stars at night.
Once upon a time, there was a little llama who lived in the mountains.
The llama liked to eat grass, to walk on the rocks and to look at the clouds.
Every morning the llama said hello to the sun, and every evening it said good night.
Please summarize the following text in one sentence.
Translate the following sentence into French: the weather is nice today.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 42 100 256 1024 2048 3.14 12,50 1,000,000 2025.
Code: def add(a, b): return a + b  # returns the sum
for (let i = 0; i < 10; i++) { console.log(i); }
{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}
I've been told he's there, you're sure? We'll see, they'd like some tea, isn't it?
Bonjour à tous ! Comment ça va aujourd'hui ? Très bien, merci beaucoup.
Bonjour, le monde ! Je suis un petit modèle de langue, très simple.
La capitale de la France est Paris. Quelle est la capitale de la France ?
Le renard brun rapide saute par-dessus le chien paresseux.
Il était une fois un petit lama qui vivait dans les montagnes.
Le lama aimait manger de l'herbe, marcher sur les rochers et regarder les nuages.
Ça coûte 12,50 € ; c'est très cher, n'est-ce pas ? Oui, c'est vrai.
Où est la bibliothèque ? Elle est à côté de l'école, près du café.
Noël, été, hiver, printemps, automne : les saisons de l'année.
Voilà un café crème et une crêpe au beurre, s'il vous plaît.
Écrivez une réponse courte et polie à l'utilisateur.
L'assistant répond à la question de l'utilisateur en français.
Les élèves étudient la géographie, l'histoire et les mathématiques à l'école.
Naïve façade, cœur, œuvre, déjà vu, à la carte, crème brûlée.
Grüße aus München! Die Straße ist schön. Größe, Übung, ändern.
¿Dónde está la estación? Mañana vamos a la playa, señor.
Привет, мир! Как дела? Спасибо, хорошо.
Γεια σου κόσμε! Καλημέρα.
こんにちは世界。東京は日本の首都です。
你好，世界！我想在北京工作。
안녕하세요 세계
مرحبا بالعالم
Emoji: 🦙 🚀 ✅ 😀 👍 ❤️ ☕ 🇫🇷
Symbols: € £ ¥ © ® ™ ° ± × ÷ → ← ↑ ↓ … « » “ ” ‘ ’ — –
Whitespace:	tab	separated  and   spaced    words.
system
user
assistant
model
Line one.
Line two.

Line four after an empty line.
"""

# ---------------------------------------------------------------------------------------------
# Prompts. All text is NFC (Qwen's HF normaliser is NFC; llama.cpp does not normalise).
# ---------------------------------------------------------------------------------------------
PROMPT_PLAIN = "The quick brown fox jumps over the lazy dog. Hello, world!"
PROMPT_UNICODE = "Bonjour à tous ! Ça coûte 12,50 € — très cher ? Grüße, 東京, naïve 🦙🚀"
# Extra strings for the tokenizer cross-check only (not reference prompts).
TOKENIZATION_EXTRA = [
    "  leading spaces", "trailing   ", "tabs\there\t\t", "\n\nnewlines\n\n\nx", "I'VE DON'T we'll",
    "3333333 1234567", "a  b   c    d", "🦙🦙🦙", "   ", "\r\n windows\r\n", "ça, c'est ça!", "x" * 50,
    "e\u0301 (decomposed) vs \u00e9 (composed)", "<|im_start|> <start_of_turn> <|turn> literal specials",
]
# Family-specific extra check strings (kept apart so the other families' checks do not change).
TOKENIZATION_EXTRA_FOR = {
    # llama.cpp's SPM prepends a space after every special token when add_space_prefix is set
    "llama2": ["<s>[INST] Hi [/INST] Hello! </s><s>[INST] Again [/INST]", "</s>x", "a <s> b</s>c"],
}
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Bonjour ! Quelle est la capitale de la France ?"},
]

# ---------------------------------------------------------------------------------------------
# Chat templates (short, real-style: same turn markup as the real models' templates).
# ---------------------------------------------------------------------------------------------
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
QWEN3_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)
GEMMA4_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set loop_messages = messages -%}"
    "{%- if messages[0]['role'] in ['system', 'developer'] -%}"
    "{{- '<|turn>system\\n' + messages[0]['content'] | trim + '<turn|>\\n' -}}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<|turn>' + role + '\\n' + message['content'] | trim + '<turn|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|turn>model\\n' -}}"
    "{%- if not enable_thinking | default(false) -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}"
    "{%- endif -%}"
)

LLAMA2_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_message = '<<SYS>>\\n' + messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_message = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{ bos_token + '[INST] ' + (system_message if loop.first else '') + message['content'] | trim + ' [/INST]' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ ' ' + message['content'] | trim + ' ' + eos_token }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# GPT-2-style pre-tokenizer regexes, exactly as in the real tokenizer.json / transformers classes.
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# The same regexes as llama.cpp's src/llama-vocab.cpp writes them (case-insensitive group expanded).
LLAMACPP_REGEX = {
    "llama-bpe": r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}

LLAMA3_SPECIALS = [  # real Llama 3.1 order (ids 128000..128010 there)
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
]
QWEN3_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # special=True (real order)
QWEN3_ADDED = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]

# Common model shape (the brief): hidden 64, 4 heads of 16, 2 kv heads, ffn 128, ctx 2048.
BASE_SHAPE = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                  head_dim=16, max_position_embeddings=2048)
WEIGHT_STD = 0.2     # large enough that logits/attention are far from uniform (robust greedy argmax)
NORM_NOISE = 0.1     # norm weights get base + N(0, NORM_NOISE) so a wrong norm offset shows up
# Gemma scales input embeddings by sqrt(hidden) and ties them to the output: with the full std the
# current token's own logit dominates and greedy decoding just repeats the input token.
EMBED_STD = {"gemma3": 0.1, "gemma4": 0.1}


def log(*a):
    print("[make_models]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Environment checks and llama.cpp converter download
# ---------------------------------------------------------------------------------------------
def check_versions(allow_mismatch: bool) -> dict:
    from importlib.metadata import version
    found = {p: version(p) for p in PINS}
    bad = {p: (found[p], PINS[p]) for p in PINS if found[p].split("+")[0] != PINS[p]}
    if bad:
        msg = "version mismatch (found, pinned): " + ", ".join(f"{p} {v}" for p, v in bad.items())
        if not allow_mismatch:
            sys.exit(msg + "  (use --allow-version-mismatch to proceed anyway)")
        log("WARNING:", msg)
    return found


def fetch_llama_cpp(dest_root: Path) -> tuple[Path, str]:
    """Download the llama-cpp-python sdist with pip and extract it; return (llama.cpp dir, sha256)."""
    dest_root.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"
    sdist = dest_root / f"{name}.tar.gz"
    if not sdist.is_file():
        log(f"downloading llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} sdist with pip")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(dest_root)], check=True)
    sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
    lcpp = dest_root / name / "vendor" / "llama.cpp"
    if not (lcpp / "convert_hf_to_gguf.py").is_file():
        log("extracting", sdist)
        with tarfile.open(sdist) as tf:
            members = [m for m in tf.getmembers() if m.name.startswith(f"{name}/vendor/llama.cpp/")
                       and ("/gguf-py/" in m.name or "/conversion/" in m.name
                            or m.name.endswith("/convert_hf_to_gguf.py")) or m.name == f"{name}/CHANGELOG.md"]
            tf.extractall(dest_root, members=members, filter="data")
    changelog = (dest_root / name / "CHANGELOG.md")
    if changelog.is_file():
        txt = changelog.read_text()
        sec = txt[txt.find(f"## [{LLAMA_CPP_PYTHON_VERSION}]"):]
        m = re.search(r"llama\.cpp@([0-9a-f]{7,40})", sec)
        if m and m.group(1) != LLAMA_CPP_COMMIT:
            sys.exit(f"sdist CHANGELOG names llama.cpp@{m.group(1)}, expected {LLAMA_CPP_COMMIT}")
    return lcpp, sha


# Runs inside a subprocess: llama.cpp's converter with the BPE pre-tokenizer hash check replaced.
CONVERTER_SHIM = r"""
import os, sys, runpy
lcpp = os.environ["HEARTH_LCPP"]
sys.path.insert(0, os.path.join(lcpp, "gguf-py"))
sys.path.insert(0, lcpp)
import conversion.base as base
forced = os.environ.get("HEARTH_TOKPRE")
if forced:
    orig = base.TextModel.get_vocab_base_pre
    def get_vocab_base_pre(self, tokenizer):
        # Our locally trained tokenizer has an unknown chkhsh; llama.cpp's detection would raise
        # NotImplementedError. Use the family's pre-tokenizer name (our tokenizer uses exactly that
        # family's regex), unless the hash happens to be a known one that says something else.
        try:
            res = orig(self, tokenizer)
        except NotImplementedError:
            res = None
        if res is not None and res != forced:
            raise SystemExit(f"chkhsh matched {res!r}, expected {forced!r}")
        base.logger.info(f"hearth: tokenizer.ggml.pre forced to {forced!r}")
        return forced
    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[1:]
runpy.run_path(os.path.join(lcpp, "convert_hf_to_gguf.py"), run_name="__main__")
"""


def convert(lcpp: Path, hf_dir: Path, out: Path, outtype: str, tokpre: str | None, name: str,
            extra_args: tuple[str, ...] = ()):
    env = dict(os.environ, HEARTH_LCPP=str(lcpp), HEARTH_TOKPRE=tokpre or "",
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-c", CONVERTER_SHIM, str(hf_dir), "--outtype", outtype,
           "--outfile", str(out), "--model-name", name, *extra_args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-5000:] + r.stderr[-8000:])
        sys.exit(f"converter failed for {out.name}")
    return r.stderr


# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------
def corpus_lines() -> list[str]:
    return [l for l in CORPUS.split("\n")]


def train_bytelevel_bpe(regex: str, vocab_size: int, nfc: bool, ignore_merges: bool):
    from tokenizers import Tokenizer, Regex, decoders, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges, byte_fallback=False, fuse_unk=False))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    # Each line keeps its trailing newline so that newline pieces are learnt too.
    tok.train_from_iterator([l + "\n" for l in corpus_lines()], trainer=trainer)
    return tok


def build_llama3_tokenizer(d: Path) -> dict:
    from tokenizers import AddedToken, processors
    tok = train_bytelevel_bpe(LLAMA3_REGEX, 1000, nfc=False, ignore_merges=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    tok.save(str(d / "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",  # as the real Llama 3.x repos
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",  # as Llama-3.1-8B-Instruct
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 2048,
        "chat_template": LLAMA3_TEMPLATE,
        "added_tokens_decoder": added_decoder(tok, LLAMA3_SPECIALS, special=True),
    }
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    (d / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, indent=2))
    n = tok.get_vocab_size(with_added_tokens=True)
    ids = {t: tok.token_to_id(t) for t in LLAMA3_SPECIALS}
    return dict(vocab_size=n, bos=ids["<|begin_of_text|>"], eos=ids["<|eot_id|>"],
                eos_ids=[ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]], pad=None,
                tokpre="llama-bpe", token_ids=ids)


def build_qwen3_tokenizer(d: Path, pad_to: int = 128) -> dict:
    from tokenizers import AddedToken, processors
    tok = train_bytelevel_bpe(QWEN2_REGEX, 1000, nfc=True, ignore_merges=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN3_SPECIALS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN3_ADDED])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.save(str(d / "tokenizer.json"))
    dec = added_decoder(tok, QWEN3_SPECIALS, special=True)
    dec.update(added_decoder(tok, QWEN3_ADDED, special=False))
    cfg = {
        "tokenizer_class": "Qwen2Tokenizer",  # as the real Qwen3 repos
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "split_special_tokens": False,
        "model_max_length": 2048,
        "chat_template": QWEN3_TEMPLATE,
        "added_tokens_decoder": dec,
    }
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    # Qwen2Tokenizer also reads vocab.json / merges.txt (the real repos ship them).
    tj = json.loads((d / "tokenizer.json").read_text())
    (d / "vocab.json").write_text(json.dumps(tj["model"]["vocab"], ensure_ascii=False))
    merges = [" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]]
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    n = tok.get_vocab_size(with_added_tokens=True)
    ids = {t: tok.token_to_id(t) for t in QWEN3_SPECIALS + QWEN3_ADDED}
    padded = ((n + pad_to - 1) // pad_to) * pad_to  # like Qwen: config vocab > tokenizer vocab
    return dict(vocab_size=padded, n_tokenizer=n, bos=ids["<|endoftext|>"], eos=ids["<|im_end|>"],
                eos_ids=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad=ids["<|endoftext|>"],
                tokpre="qwen2", token_ids=ids)


def added_decoder(tok, tokens, special: bool) -> dict:
    return {str(tok.token_to_id(t)): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                      "single_word": False, "special": special} for t in tokens}


def finish_tokenizer_config(d: Path) -> None:
    """transformers 5 keeps added tokens only in tokenizer.json; the real Gemma repos (and llama.cpp's
    SentencePiece path, which reads them to type tokens CONTROL / USER_DEFINED) also have
    added_tokens_decoder and add_bos_token / add_eos_token in tokenizer_config.json."""
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    tj = json.loads((d / "tokenizer.json").read_text())
    cfg["add_bos_token"] = True
    cfg["add_eos_token"] = False
    cfg["added_tokens_decoder"] = {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                                                     "single_word", "special")}
                                   for a in tj["added_tokens"]}
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))


GEMMA3_USER_DEFINED = ["<start_of_turn>", "<end_of_turn>"]


def train_gemma3_spm(d: Path, extra_user_defined: tuple[str, ...] = ()) -> None:
    import sentencepiece as spm
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([l for l in corpus_lines() if l.strip()]), model_writer=model,
        model_type="bpe", vocab_size=1024, character_coverage=0.995, byte_fallback=True,
        split_digits=True, add_dummy_prefix=False, remove_extra_whitespaces=False,
        normalization_rule_name="identity", allow_whitespace_only_pieces=True, split_by_whitespace=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", control_symbols=["<mask>"],
        user_defined_symbols=GEMMA3_USER_DEFINED + list(extra_user_defined),
        num_threads=1, shuffle_input_sentence=False, input_sentence_size=0, max_sentencepiece_length=16,
        hard_vocab_limit=False, minloglevel=2,
    )
    (d / "tokenizer.model").write_bytes(model.getvalue())


GEMMA3_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]


def build_gemma3_tokenizer(d: Path, extra_specials: tuple[str, ...] = ()) -> dict:
    """SentencePiece BPE (byte fallback, no dummy prefix, split digits) like Gemma 3's tokenizer.model,
    plus the equivalent tokenizer.json that transformers' GemmaTokenizer builds from it.
    extra_specials: more user-defined special pieces (make_vision.py's image tokens)."""
    import sentencepiece as spm
    from transformers import GemmaTokenizer
    from transformers.tokenization_utils_base import generate_merges
    train_gemma3_spm(d, extra_specials)
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    # what transformers' SentencePieceExtractor does for a BPE .model: merges ordered by piece id
    # (= by descending SentencePiece score, which is the merge priority SPM and llama.cpp use)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = generate_merges(vocab)
    tok = GemmaTokenizer(vocab=vocab, merges=merges, chat_template=GEMMA3_TEMPLATE, model_max_length=2048,
                         extra_special_tokens=GEMMA3_USER_DEFINED + list(extra_specials),
                         add_bos_token=True, add_eos_token=False)
    tok.save_pretrained(str(d))
    finish_tokenizer_config(d)
    ids = {t: sp.piece_to_id(t) for t in GEMMA3_SPECIALS + list(extra_specials)}
    return dict(vocab_size=sp.get_piece_size(), bos=ids["<bos>"], eos=ids["<eos>"],
                eos_ids=[ids["<eos>"], ids["<end_of_turn>"]], pad=ids["<pad>"], tokpre=None, token_ids=ids)


LLAMA2_SPECIALS = ["<unk>", "<s>", "</s>"]


def build_llama2_tokenizer(d: Path) -> dict:
    """SentencePiece BPE like Llama 2's (and Mistral 7B's) tokenizer.model: <unk> 0, <s> 1, </s> 2, the
    256 byte-fallback pieces <0x00>..<0xFF> at 3..258, split digits, and the dummy prefix (a "▁" before
    the text) with extra whitespace kept. Trained like gemma3's (train_gemma3_spm) but with Llama 2's
    normalizer settings and no user-defined pieces. transformers' LlamaTokenizer (legacy: the "▁" is
    prepended to every text segment, also after a special token, as sentencepiece itself and llama.cpp
    do) gives the tokenizer.json; the converter reads tokenizer.model."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_base import generate_merges
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([l for l in corpus_lines() if l.strip()]), model_writer=model,
        model_type="bpe", vocab_size=1000, character_coverage=0.995, byte_fallback=True,
        split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", allow_whitespace_only_pieces=True, split_by_whitespace=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
        num_threads=1, shuffle_input_sentence=False, input_sentence_size=0, max_sentencepiece_length=16,
        hard_vocab_limit=False, minloglevel=2,
    )
    (d / "tokenizer.model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = generate_merges(vocab)  # by piece id = by descending score, as for gemma3
    tok = LlamaTokenizer(vocab=vocab, merges=merges, chat_template=LLAMA2_TEMPLATE, model_max_length=2048,
                         legacy=True, add_bos_token=True, add_eos_token=False)
    tok.save_pretrained(str(d))
    finish_tokenizer_config(d)
    # save_pretrained drops legacy; without it LlamaTokenizer loads with legacy=False, whose Metaspace
    # prepend_scheme "first" puts no "▁" after a special token (llama.cpp does)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["legacy"] = True
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    ids = {t: sp.piece_to_id(t) for t in LLAMA2_SPECIALS}
    return dict(vocab_size=sp.get_piece_size(), bos=ids["<s>"], eos=ids["</s>"], eos_ids=[ids["</s>"]],
                pad=None, tokpre=None, token_ids=ids)


GEMMA4_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>", "<|think|>",
                   "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>",
                   "<tool_response|>", '<|"|>']


def build_gemma4_tokenizer(d: Path, extra_specials: tuple[str, ...] = ()) -> dict:
    """BPE over '▁'-escaped text with byte fallback <0xXX> (transformers' GemmaTokenizer layout, which
    is what llama.cpp's 'gemma4' tokenizer model implements). Trained with newline runs split off,
    because llama.cpp splits on newline runs before BPE while HF does not (so no merge may mix them)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer
    t = Tokenizer(models.BPE(byte_fallback=True, fuse_unk=True, unk_token="<unk>"))
    t.normalizer = normalizers.Replace(" ", "▁")
    # training-only pre-tokenizer: newline runs isolated, and SentencePiece-like "▁word" units (so
    # pieces look like Gemma's: "▁the", never "the▁"); inference uses GemmaTokenizer's own pipeline
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\n+"), behavior="isolated"),
        pre_tokenizers.Split("▁", behavior="merged_with_next"),
    ])
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    base = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    specials = GEMMA4_SPECIALS + [s for s in extra_specials if s not in GEMMA4_SPECIALS]
    trainer = trainers.BpeTrainer(vocab_size=1024 - (len(specials) - 5), min_frequency=1,
                                  show_progress=False, special_tokens=base + bytes_)
    t.train_from_iterator([l + "\n" for l in corpus_lines()], trainer=trainer)
    tj = json.loads(t.to_str())
    vocab = tj["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in tj["model"]["merges"]]
    extra = [s for s in specials if s not in base]
    for s in extra:
        vocab[s] = len(vocab)
    tok = GemmaTokenizer(vocab=vocab, merges=merges, chat_template=GEMMA4_TEMPLATE, model_max_length=2048,
                         extra_special_tokens=extra, add_bos_token=True, add_eos_token=False)
    tok.save_pretrained(str(d))
    finish_tokenizer_config(d)
    ids = {s: vocab[s] for s in specials}
    return dict(vocab_size=len(vocab), bos=ids["<bos>"], eos=ids["<eos>"],
                eos_ids=[ids["<eos>"], ids["<turn|>"]], pad=ids["<pad>"], tokpre=None, token_ids=ids)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def make_config(family: str, tk: dict):
    import transformers as T
    common = dict(BASE_SHAPE, vocab_size=tk["vocab_size"], bos_token_id=tk["bos"],
                  eos_token_id=tk["eos_ids"], pad_token_id=tk["pad"])
    if family == "llama3":
        return T.LlamaConfig(**common, num_hidden_layers=2, rms_norm_eps=1e-5, hidden_act="silu",
                             tie_word_embeddings=False,
                             rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                              "original_max_position_embeddings": 1024})
    if family == "llama2":  # Llama 2 / Mistral 7B: plain RoPE, untied output
        return T.LlamaConfig(**common, num_hidden_layers=2, rms_norm_eps=1e-5, hidden_act="silu",
                             tie_word_embeddings=False,
                             rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    if family == "qwen3":
        return T.Qwen3Config(**common, num_hidden_layers=2, rms_norm_eps=1e-6, hidden_act="silu",
                             tie_word_embeddings=True, use_sliding_window=False,
                             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    if family == "gemma3":
        # 6 layers = the real 5:1 pattern (llama.cpp hard-codes pattern 6 for gemma3): layers 0-4
        # sliding window, layer 5 global. Small window so the prompts exercise it.
        # query_pre_attn_scalar = head_dim: llama.cpp uses 1/sqrt(head_dim) for every size but 27B.
        return T.Gemma3TextConfig(**common, num_hidden_layers=6, rms_norm_eps=1e-6,
                                  hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=16,
                                  sliding_window=8, final_logit_softcapping=None, attn_logit_softcapping=None,
                                  tie_word_embeddings=True)
    if family == "gemma4":
        return T.Gemma4TextConfig(**common, num_hidden_layers=6, rms_norm_eps=1e-6,
                                  hidden_activation="gelu_pytorch_tanh", sliding_window=8,
                                  final_logit_softcapping=30.0, tie_word_embeddings=True,
                                  hidden_size_per_layer_input=0, vocab_size_per_layer_input=tk["vocab_size"],
                                  global_head_dim=32, num_global_key_value_heads=1, attention_k_eq_v=True,
                                  num_kv_shared_layers=0, enable_moe_block=False)
    raise ValueError(family)


def model_class(family: str):
    import transformers as T
    return {"llama3": T.LlamaForCausalLM, "qwen3": T.Qwen3ForCausalLM, "gemma3": T.Gemma3ForCausalLM,
            "gemma4": T.Gemma4ForCausalLM, "llama2": T.LlamaForCausalLM}[family]


def build_model(family: str, cfg, seed: int, n_real_tokens: int):
    import torch
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = model_class(family)(cfg).eval().to(torch.float32)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if p.ndim == 1:  # RMSNorm weights (no biases in these archs)
                base = 0.0 if family == "gemma3" else 1.0  # Gemma3RMSNorm stores w and applies (1 + w)
                p.copy_(base + NORM_NOISE * torch.randn(p.shape, generator=g))
            else:
                std = EMBED_STD.get(family, WEIGHT_STD) if "embed_tokens" in name else WEIGHT_STD
                p.copy_(std * torch.randn(p.shape, generator=g))
                if "embed_tokens" in name and n_real_tokens < p.shape[0]:
                    # padded vocab rows (Qwen-style config vocab > tokenizer vocab): zero, as in real
                    # checkpoints, so their (tied) logit is 0 and greedy never picks them
                    p[n_real_tokens:] = 0.0
        for name, b in sorted(model.named_buffers(), key=lambda kv: kv[0]):
            if name.endswith("layer_scalar"):  # Gemma 4 per-layer output scale (ones at init; not in real ckpts)
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return model


# ---------------------------------------------------------------------------------------------
# Reference outputs
# ---------------------------------------------------------------------------------------------
def r5(x: float) -> float:
    return round(float(x), 5)


def prompts_for(tokenizer) -> list[dict]:
    chat_text = tokenizer.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
    return [
        dict(name="plain", text=PROMPT_PLAIN, add_special_tokens=True),
        dict(name="unicode", text=PROMPT_UNICODE, add_special_tokens=True),
        dict(name="chat", text=chat_text, add_special_tokens=False, messages=CHAT_MESSAGES,
             add_generation_prompt=True),
    ]


def greedy(model, ids: list[int], n: int, forward=None) -> dict:
    """forward(ids) -> logits [1, len, vocab]; default model(ids) (make_vision.py adds the image)."""
    import torch
    forward = forward or (lambda cur: model(torch.tensor([cur])).logits)
    cur = list(ids)
    steps = []
    last_logits = None
    with torch.no_grad():
        for i in range(n):
            logits = forward(cur)[0, -1].to(torch.float32)
            if i == 0:
                last_logits = logits.clone()
            top = torch.topk(logits, TOPK + 1)
            tid = int(torch.argmax(logits))
            vals = top.values.tolist()
            steps.append(dict(token=tid, logit=r5(logits[tid]),
                              top5=[[int(j), r5(v)] for j, v in zip(top.indices.tolist()[:TOPK], vals[:TOPK])],
                              margin=r5(vals[0] - vals[1])))
            cur.append(tid)
    return dict(last_logits=last_logits, steps=steps, new_ids=cur[len(ids):])


def make_reference(family: str, hf_dir: Path) -> dict:
    import torch
    import transformers as T
    tokenizer = T.AutoTokenizer.from_pretrained(str(hf_dir))
    model = model_class(family).from_pretrained(str(hf_dir), torch_dtype=torch.float32,
                                                attn_implementation="eager").eval()
    out_prompts = []
    for p in prompts_for(tokenizer):
        ids = tokenizer(p["text"], add_special_tokens=p["add_special_tokens"])["input_ids"]
        g = greedy(model, ids, N_NEW_TOKENS)
        entry = dict(name=p["name"], text=p["text"], add_special_tokens=p["add_special_tokens"])
        if "messages" in p:
            entry.update(messages=p["messages"], add_generation_prompt=True)
        entry.update(
            prompt_ids=ids,
            prompt_pieces=tokenizer.convert_ids_to_tokens(ids),
            last_logits=[r5(x) for x in g["last_logits"].tolist()],
            last_logits_argmax=int(torch.argmax(g["last_logits"])),
            greedy_ids=g["new_ids"],
            greedy_text=tokenizer.decode(g["new_ids"], skip_special_tokens=False),
            greedy_text_skip_special=tokenizer.decode(g["new_ids"], skip_special_tokens=True),
            greedy_steps=g["steps"],
            greedy_min_margin=min(s["margin"] for s in g["steps"]),
        )
        out_prompts.append(entry)
    cfg = model.config
    return dict(family=family, prompts=out_prompts, cfg=cfg, model=model, tokenizer=tokenizer)


# ---------------------------------------------------------------------------------------------
# llama.cpp tokenizer re-implementations (from the GGUF's own vocab), for a tokenization cross-check
# ---------------------------------------------------------------------------------------------
def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _bpe_merge(symbols: list[str], ranks: dict) -> list[str]:
    # llama.cpp llm_tokenizer_bpe_session: repeatedly merge the lowest-rank adjacent pair (leftmost on ties)
    while len(symbols) > 1:
        best = None
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2:]
    return symbols


def _split_specials(text: str, specials: list[str]):
    # llama.cpp tokenizer_st_partition with parse_special=true: longest special tokens first
    parts = [(False, text)]
    for s in sorted(specials, key=len, reverse=True):
        new = []
        for is_sp, frag in parts:
            if is_sp:
                new.append((is_sp, frag))
                continue
            pieces = frag.split(s)
            for k, piece in enumerate(pieces):
                if piece:
                    new.append((False, piece))
                if k < len(pieces) - 1:
                    new.append((True, s))
        parts = new
    return parts


def _specials(meta: dict) -> list[str]:
    # CONTROL, USER_DEFINED, UNKNOWN: the tokens llama.cpp's tokenizer_st_partition matches in the text
    return [t for t, ty in zip(meta["tokens"], meta["types"]) if ty in (2, 3, 4)]


def _spm_segment_starts_with_space(meta: dict, text: str) -> bool:
    """True if a raw-text segment that llama.cpp's SPM gives a space prefix (the first one, and each one
    after a special token) already starts with a space."""
    prev_special = True
    for is_sp, frag in _split_specials(text, _specials(meta)):
        if not is_sp and prev_special and frag.startswith(" "):
            return True
        prev_special = is_sp
    return False


def llamacpp_tokenize(meta: dict, text: str, add_special: bool) -> list[int]:
    import regex
    tokens = meta["tokens"]
    tid = {t: i for i, t in enumerate(tokens)}
    specials = _specials(meta)
    out: list[int] = []
    if add_special and meta.get("add_bos"):
        out.append(meta["bos"])
    model = meta["model"]
    if model == "gpt2":
        b2u = _bytes_to_unicode()
        ranks = {tuple(m.split(" ", 1)): i for i, m in enumerate(meta["merges"])}
        rx = regex.compile(LLAMACPP_REGEX[meta["pre"]])
        for is_sp, frag in _split_specials(text, specials):
            if is_sp:
                out.append(tid[frag])
                continue
            for word in rx.findall(frag):
                w = "".join(b2u[b] for b in word.encode("utf-8"))
                if meta["ignore_merges"] and w in tid:
                    out.append(tid[w])
                    continue
                for s in _bpe_merge(list(w), ranks):
                    out.append(tid[s])
    elif model == "gemma4":
        ranks = {tuple(m.split(" ", 1)): i for i, m in enumerate(meta["merges"])}
        for is_sp, frag in _split_specials(text, specials):
            if is_sp:
                out.append(tid[frag])
                continue
            frag = frag.replace(" ", "▁")
            for word in regex.findall(r"[^\n]+|[\n]+", frag):
                if "\n" in word and word in tid:
                    out.append(tid[word])
                    continue
                for s in _bpe_merge(list(word), ranks):
                    if s in tid:
                        out.append(tid[s])
                    else:
                        out.extend(tid[f"<0x{b:02X}>"] for b in s.encode("utf-8"))
    elif model == "llama":  # SPM (llm_tokenizer_spm_session): merge the adjacent pair whose
        # concatenation is a token with the best score (leftmost on ties); unknown chars -> <0xXX>.
        # With add_space_prefix, a space is prepended to the raw text at the start (BOS or not) and
        # after each special token, before spaces become "▁" (llama_vocab::impl::tokenize).
        scores = meta["scores"]
        prev_special = True
        for is_sp, frag in _split_specials(text, specials):
            if is_sp:
                out.append(tid[frag])
                prev_special = True
                continue
            if meta["add_space_prefix"] and prev_special:
                frag = " " + frag
            prev_special = False
            syms = list(frag.replace(" ", "▁"))
            while len(syms) > 1:
                best = None
                for i in range(len(syms) - 1):
                    j = tid.get(syms[i] + syms[i + 1])
                    if j is not None and (best is None or scores[j] > best[0]):
                        best = (scores[j], i)
                if best is None:
                    break
                i = best[1]
                syms = syms[:i] + [syms[i] + syms[i + 1]] + syms[i + 2:]
            for s in syms:
                if s in tid:
                    out.append(tid[s])
                else:
                    out.extend(tid[f"<0x{b:02X}>"] for b in s.encode("utf-8"))
    else:
        raise ValueError(model)
    return out


# ---------------------------------------------------------------------------------------------
# GGUF inspection
# ---------------------------------------------------------------------------------------------
def read_gguf(path: Path):
    import gguf
    r = gguf.GGUFReader(str(path))

    def val(key):
        f = r.fields.get(key)
        return None if f is None else f.contents()
    arch = val("general.architecture")
    meta = dict(
        arch=arch, model=val("tokenizer.ggml.model"), pre=val("tokenizer.ggml.pre"),
        tokens=val("tokenizer.ggml.tokens"), types=val("tokenizer.ggml.token_type"),
        scores=val("tokenizer.ggml.scores"), merges=val("tokenizer.ggml.merges") or [],
        bos=val("tokenizer.ggml.bos_token_id"), eos=val("tokenizer.ggml.eos_token_id"),
        eot=val("tokenizer.ggml.eot_token_id"), pad=val("tokenizer.ggml.padding_token_id"),
        add_bos=val("tokenizer.ggml.add_bos_token"), add_eos=val("tokenizer.ggml.add_eos_token"),
        chat_template=val("tokenizer.chat_template"), n_ctx_train=val(f"{arch}.context_length"),
        file_type=val("general.file_type"),
    )
    meta["ignore_merges"] = meta["pre"] in ("llama-bpe",)
    # tokenizer.ggml.add_space_prefix: when the key is absent llama.cpp defaults to true for SPM
    # ("llama") vocabs (the Llama 2 converter path writes no key) and to false otherwise
    meta["add_space_prefix"] = val("tokenizer.ggml.add_space_prefix")
    if meta["add_space_prefix"] is None:
        meta["add_space_prefix"] = meta["model"] == "llama"
    meta["add_space_prefix"] = bool(meta["add_space_prefix"])
    if meta["model"] == "gemma4" and not meta["add_bos"]:
        meta["add_bos"] = True  # llama.cpp forces add_bos for gemma4
    tensors = {}
    for t in r.tensors:
        tensors[t.name] = (t.tensor_type.name, [int(x) for x in t.shape], t)
    kv = {}
    for k, f in r.fields.items():
        if k.startswith("tokenizer.ggml.") and k in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                                                     "tokenizer.ggml.scores", "tokenizer.ggml.merges"):
            continue
        if k.startswith("GGUF."):
            continue
        try:
            v = f.contents()
        except Exception:
            continue
        kv[k] = v
    return meta, tensors, kv


def dequant(t):
    import gguf
    import numpy as np
    return np.asarray(gguf.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(
        [int(x) for x in reversed(t.shape)])


# ---------------------------------------------------------------------------------------------
# Emulation of llama.cpp's number formats, to estimate the F16 / Q8_0 logit error
# ---------------------------------------------------------------------------------------------
def q8_0_roundtrip(x):
    import torch
    shp = x.shape
    b = x.reshape(-1, 32)
    d = b.abs().amax(dim=1, keepdim=True) / 127.0
    d16 = d.to(torch.float16).to(torch.float32)  # scale stored as fp16
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(b * inv).clamp(-127, 127)
    return (q * d16).reshape(shp)


def _table_gelu_class():
    import torch

    class TableGelu(torch.nn.Module):  # ggml CPU GELU: F16 lookup table, exact outside (-10, 10)
        def __init__(self, act):
            super().__init__()
            self.act = act

        def forward(self, x):
            f16 = lambda t: t.to(torch.float16).to(torch.float32)
            y = f16(self.act(f16(x)))
            return torch.where(x <= -10, torch.zeros_like(x), torch.where(x >= 10, x, y))
    return TableGelu


EMULATION_MODES = {
    # name: (weights+matmul inputs rounding, K/V rounded to F16)
    "f32_kv_f32": ("f32", False),  # F32 GGUF, KV cache type F32
    "f32": ("f32", True),          # F32 GGUF, default F16 KV cache
    "f16": ("f16", True),
    "q8_0": ("q8_0", True),
}


def emulate(family: str, hf_dir: Path, seqs: list[tuple[list[int], list[int]]], mode: str) -> float:
    """Estimate of llama.cpp's CPU numerics: max |logit - ref| over the last prompt position and every
    greedy step (teacher-forced on the reference continuation) of the three prompts, when
      - 2-D weights are rounded as the GGUF stores them (F16 / Q8_0; 1-D norms stay F32),
      - matmul inputs are rounded to ggml's CPU vec_dot_type (F16 weights -> F16, Q8_0 -> Q8_0),
      - K and V are rounded to F16 (llama.cpp's default KV cache type), unless mode is f32_kv_f32,
      - GELU (Gemma) goes through ggml's F16 lookup table: fp16(gelu_tanh(fp16(x))) for |x| < 10.
    Rounding of Q inside attention, of softmax outputs and summation order are not modelled."""
    import torch
    wmode, kv16 = EMULATION_MODES[mode]
    TableGelu = _table_gelu_class()
    ref_model = model_class(family).from_pretrained(str(hf_dir), torch_dtype=torch.float32,
                                                    attn_implementation="eager").eval()
    m = model_class(family).from_pretrained(str(hf_dir), torch_dtype=torch.float32,
                                            attn_implementation="eager").eval()
    f16 = lambda x: x.to(torch.float16).to(torch.float32)
    rnd = {"f16": f16, "q8_0": q8_0_roundtrip, "f32": lambda x: x}[wmode]
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim == 2:
                p.copy_(rnd(p))
    hooks = []
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Linear) and wmode != "f32":
            hooks.append(mod.register_forward_pre_hook(lambda _m, args: (rnd(args[0]),) + args[1:]))
        if kv16 and name.endswith(("k_proj", "v_proj")):
            hooks.append(mod.register_forward_hook(lambda _m, _a, out: f16(out)))
        if hasattr(mod, "act_fn") and family.startswith("gemma"):
            mod.act_fn = TableGelu(mod.act_fn)
    worst = 0.0
    with torch.no_grad():
        for prompt, cont in seqs:
            ids = torch.tensor([prompt + cont[:-1]])
            a = ref_model(ids).logits[0, len(prompt) - 1:]
            b = m(ids).logits[0, len(prompt) - 1:]
            worst = max(worst, float((a - b).abs().max()))
    for h in hooks:
        h.remove()
    return worst


# ---------------------------------------------------------------------------------------------
# Tensor check: GGUF tensor (dequantised) vs the HF checkpoint tensor it came from
# ---------------------------------------------------------------------------------------------
def check_tensors(family: str, model, gguf_tensors: dict, outtype: str) -> dict:
    import gguf
    import numpy as np
    import torch
    arch = {"llama3": gguf.MODEL_ARCH.LLAMA, "qwen3": gguf.MODEL_ARCH.QWEN3, "gemma3": gguf.MODEL_ARCH.GEMMA3,
            "gemma4": gguf.MODEL_ARCH.GEMMA4, "llama2": gguf.MODEL_ARCH.LLAMA}[family]
    nmap = gguf.get_tensor_name_map(arch, model.config.num_hidden_layers)
    sd = {k: v.detach().to(torch.float32).numpy() for k, v in model.state_dict().items()}
    seen = set()
    worst = 0.0
    report = {}
    for hf_name, w in sorted(sd.items()):
        name = hf_name[len("model."):] if hf_name.startswith("model.") else hf_name
        gname = None
        for cand in (name, hf_name, name + ".weight", hf_name + ".weight"):
            gname = gname or nmap.get_name(cand, try_suffixes=(".weight", ".bias"))
        if gname is not None and gname not in gguf_tensors and gname + ".weight" in gguf_tensors:
            gname += ".weight"  # e.g. Gemma 4 layer_scalar (a buffer without suffix) -> layer_output_scale.weight
        if gname is None or gname not in gguf_tensors:
            if hf_name == "lm_head.weight" and model.config.tie_word_embeddings:
                continue
            report[hf_name] = "MISSING in GGUF"
            continue
        seen.add(gname)
        ttype, _shape, t = gguf_tensors[gname]
        g = dequant(t)
        ref = w.copy()
        if family == "gemma3" and ref.ndim == 1:
            ref = ref + 1.0  # converter folds Gemma3RMSNorm's (1 + w)
        if family == "gemma4" and hf_name.endswith("layer_scalar"):
            ref = ref.reshape(g.shape)
        if g.shape != ref.shape:
            ref = ref.reshape(g.shape) if ref.size == g.size else ref
        if family in ("llama3", "llama2") and re.search(r"(q_proj|k_proj)\.weight$", hf_name):
            # llama converter permutes q/k rows for ggml's rope layout: compare as multisets per column
            g_cmp, r_cmp = np.sort(g, axis=0), np.sort(ref, axis=0)
        else:
            g_cmp, r_cmp = g, ref
        d = float(np.abs(g_cmp - r_cmp).max())
        worst = max(worst, d) if ref.ndim > 1 else worst
        report[hf_name] = f"{gname} {ttype} maxdiff={d:.3g}"
        if outtype == "f32" and d != 0.0:
            raise SystemExit(f"{family} f32: tensor {hf_name} -> {gname} differs by {d}")
        if ref.ndim == 1 and ttype != "F32":
            raise SystemExit(f"{family} {outtype}: 1-D tensor {gname} stored as {ttype}")
    extra = sorted(set(gguf_tensors) - seen)
    missing = [k for k, v in report.items() if v.startswith("MISSING")]
    if missing:
        raise SystemExit(f"{family} {outtype}: HF tensors with no GGUF tensor: {missing}")
    return dict(max_matrix_abs_diff=worst, extra_gguf_tensors=extra)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
TOKENIZER_BUILDERS = {"llama3": build_llama3_tokenizer, "qwen3": build_qwen3_tokenizer,
                      "gemma3": build_gemma3_tokenizer, "gemma4": build_gemma4_tokenizer,
                      "llama2": build_llama2_tokenizer}


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def do_family(family: str, out_dir: Path, lcpp: Path, env_info: dict) -> dict:
    import torch
    import transformers as T
    seed = SEED + SEED_OFFSET[family]
    with tempfile.TemporaryDirectory(prefix=f"hearth-{family}-") as tmp:
        hf_dir = Path(tmp) / f"tiny-random-{family}"
        hf_dir.mkdir()
        tk = TOKENIZER_BUILDERS[family](hf_dir)
        cfg = make_config(family, tk)
        model = build_model(family, cfg, seed, tk.get("n_tokenizer", tk["vocab_size"]))
        model.save_pretrained(str(hf_dir), safe_serialization=True)
        gen_cfg = T.GenerationConfig(bos_token_id=tk["bos"], eos_token_id=tk["eos_ids"], pad_token_id=tk["pad"],
                                     do_sample=False)
        gen_cfg.save_pretrained(str(hf_dir))
        # sanity: the saved tokenizer loads back with the same ids as the backend we built
        tokenizer = T.AutoTokenizer.from_pretrained(str(hf_dir))
        log(family, "tokenizer", type(tokenizer).__name__, "vocab", len(tokenizer), "config vocab", cfg.vocab_size)

        ggufs = {}
        for ot in OUTTYPES_FOR.get(family, OUTTYPES):
            dst = out_dir / f"{family}-{ot}.gguf"
            convert(lcpp, hf_dir, dst, ot, tk["tokpre"], f"tiny-random-{family}")
            ggufs[ot] = dst
            log(family, ot, dst.stat().st_size, "bytes")

        ref = make_reference(family, hf_dir)
        model = ref.pop("model")
        tokenizer = ref.pop("tokenizer")
        hf_cfg = ref.pop("cfg")

        # GGUF checks
        files = {}
        meta32 = None
        for ot, p in ggufs.items():
            meta, tensors, kv = read_gguf(p)
            tc = check_tensors(family, model, tensors, ot)
            files[ot] = dict(file=p.name, bytes=p.stat().st_size, sha256=sha256(p),
                             tensor_types=sorted({v[0] for v in tensors.values()}),
                             max_weight_abs_diff_vs_hf=tc["max_matrix_abs_diff"],
                             gguf_only_tensors=tc["extra_gguf_tensors"])
            if ot == "f32":
                meta32, kv32 = meta, kv
        # tokenizer cross-check: llama.cpp algorithm on the GGUF vocab vs HF ids
        tok_check = []
        for p in ref["prompts"]:
            ids_lc = llamacpp_tokenize(meta32, p["text"], add_special=p["add_special_tokens"])
            ok = ids_lc == p["prompt_ids"]
            tok_check.append(dict(name=p["name"], match=ok))
            if not ok:
                log("TOKENIZATION MISMATCH", family, p["name"], "\n hf:", p["prompt_ids"], "\n lc:", ids_lc)
        if not all(t["match"] for t in tok_check):
            raise SystemExit(f"{family}: llama.cpp-style tokenization differs from HF")
        # wider check (not recorded as references): every corpus line + awkward strings
        import unicodedata
        extra_report = dict(checked=0, mismatches=[])
        for text in corpus_lines() + TOKENIZATION_EXTRA + [CORPUS] + TOKENIZATION_EXTRA_FOR.get(family, []):
            extra_report["checked"] += 1
            a = tokenizer(text, add_special_tokens=False)["input_ids"]
            b = llamacpp_tokenize(meta32, text, add_special=False)
            if a != b:
                if family == "qwen3" and unicodedata.normalize("NFC", text) != text:
                    extra_report["mismatches"].append(dict(text=text, hf=a, llama_cpp_emulated=b, why=(
                        "expected: Qwen's HF tokenizer NFC-normalises, llama.cpp does not")))
                elif family == "llama2" and _spm_segment_starts_with_space(meta32, text):
                    import sentencepiece as spm
                    sp = spm.SentencePieceProcessor(model_file=str(hf_dir / "tokenizer.model"))
                    extra_report["mismatches"].append(dict(text=text, hf=a, llama_cpp_emulated=b, why=(
                        "expected: llama.cpp's SPM prepends a space at the start of the text and after each "
                        "special token even where the text there already starts with a space (so does "
                        "sentencepiece's add_dummy_prefix: sentencepiece_ids); transformers' LlamaTokenizer "
                        "(Metaspace, prepend_scheme 'always') does not prepend before an existing space"),
                        sentencepiece_ids=None if any(sp_ for sp_, _ in _split_specials(text, _specials(meta32)))
                        else sp.encode(text)))
                else:
                    raise SystemExit(f"{family}: llama.cpp-style tokenization differs from HF on {text!r}")

        # numeric error estimates
        seqs = [(p["prompt_ids"], p["greedy_ids"]) for p in ref["prompts"]]
        est = {mode: r5(emulate(family, hf_dir, seqs, mode)) for mode in EMULATION_MODES}
        log(family, "emulated max |dlogit|:", est)

        n_vocab = len(meta32["tokens"])
        hf_vocab = hf_cfg.vocab_size
        special_ids = tk["token_ids"]
        eog = sorted({i for t, i in special_ids.items() if t in (
            "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<end_of_turn>",
            "<eos>", "<turn|>", "<|tool_response>", "</s>")})
        result = dict(
            family=family,
            hf_class=type(model).__name__,
            generated_by=dict(script="testdata/models/make_models.py", seed=seed, **env_info),
            hf_config={k: v for k, v in json.loads(hf_cfg.to_json_string(use_diff=False)).items()
                       if k != "_name_or_path"},
            facts=dict(
                n_vocab=n_vocab, hf_vocab_size=hf_vocab, tokenizer_len=len(tokenizer), n_ctx_train=meta32["n_ctx_train"],
                gguf_arch=meta32["arch"], tokenizer_model=meta32["model"], tokenizer_pre=meta32["pre"],
                bos_id=meta32["bos"], eos_id=meta32["eos"], eot_id=meta32["eot"], pad_id=meta32["pad"],
                add_bos=meta32["add_bos"], add_eos=meta32["add_eos"],
                hf_eos_token_ids=tk["eos_ids"], expected_llama_cpp_eog_ids=eog,
                special_token_ids=special_ids,
                chat_template=meta32["chat_template"],
            ),
            gguf_files=files,
            gguf_metadata=kv32,
            tokenization_check=dict(prompts=tok_check, extra_strings=extra_report),
            emulated_max_abs_logit_diff=est,
            reference=dict(
                settings=dict(dtype="float32", attn_implementation="eager", device="cpu", decoding="greedy argmax, "
                              "full recompute each step, no EOS stopping", n_new_tokens=N_NEW_TOKENS,
                              logits_rounding=5),
                prompts=ref["prompts"],
            ),
        )
        n_tok = tk.get("n_tokenizer", tk["vocab_size"])
        bad = [i for p in ref["prompts"] for i in p["greedy_ids"] if i >= n_tok]
        if bad:
            raise SystemExit(f"{family}: greedy picked padding ids {bad}")
        if hf_vocab != n_vocab:
            raise SystemExit(f"{family}: HF vocab {hf_vocab} != GGUF n_vocab {n_vocab}")
        return result


def jsonable(o):
    import numpy as np
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return o


def fixture_environment(args) -> tuple[Path, dict]:
    """The deterministic environment every fixture script runs in (one torch thread, deterministic
    algorithms, offline), the pinned versions checked, and the converter fetched: (llama.cpp dir, env_info)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    versions = check_versions(args.allow_version_mismatch)
    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    lcpp, sdist_sha = fetch_llama_cpp(args.llama_cpp_dir)
    sys.path.insert(0, str(lcpp / "gguf-py"))  # the converter's own gguf-py (reader, dequantize)
    env_info = dict(python=sys.version.split()[0], packages=versions,
                    llama_cpp_python_sdist=f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
                    llama_cpp_python_sdist_sha256=sdist_sha, llama_cpp_commit=LLAMA_CPP_COMMIT,
                    converter="vendor/llama.cpp/convert_hf_to_gguf.py (gguf-py 0.19.0)")
    return lcpp, env_info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="llama3,qwen3,gemma3,gemma4,llama2")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--llama-cpp-dir", type=Path, default=Path(tempfile.gettempdir()) / "hearth-llama-cpp-python")
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()

    lcpp, env_info = fixture_environment(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for fam in args.families.split(","):
        fam = fam.strip()
        log("===", fam)
        res = do_family(fam, args.out, lcpp, env_info)
        (args.out / f"{fam}.reference.json").write_text(
            json.dumps(jsonable(res), indent=1, ensure_ascii=False) + "\n")
        log(fam, "done")



def media_fixture_main(doc: str, name: str, media_flag: str, media_dir: Path, build, log) -> None:
    """The main of make_vision.py and make_audio.py: parses --out, `media_flag` (where the test media go),
    --llama-cpp-dir and --allow-version-mismatch, sets up the deterministic environment, fetches the
    converter, runs `build(out_dir, media_dir, lcpp, env_info)` and writes `{name}.reference.json`."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument(media_flag, type=Path, default=media_dir, dest="media_out")
    ap.add_argument("--llama-cpp-dir", type=Path, default=Path(tempfile.gettempdir()) / "hearth-llama-cpp-python")
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()

    lcpp, env_info = fixture_environment(args)
    args.out.mkdir(parents=True, exist_ok=True)
    args.media_out.mkdir(parents=True, exist_ok=True)
    res = build(args.out, args.media_out, lcpp, env_info)
    (args.out / f"{name}.reference.json").write_text(json.dumps(jsonable(res), indent=1, ensure_ascii=False) + "\n")
    log("done")

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tiny random-weight Gemma 4 *audio* test model (GGUF + mmproj GGUF) + transformers reference outputs.

Deterministically:
  1. trains the tiny Gemma 4 BPE tokenizer of make_models.py, with the image and audio tokens
     <|image> <image|> <|image|> <|audio> <audio|> <|audio|> added as specials;
  2. builds a tiny random-weight Gemma4ForConditionalGeneration: the text part shaped like make_models.py's
     gemma4, a Gemma 4 audio tower (conformer: hidden 32, 2 layers, 2 heads, 128 mel bins, subsampling
     channels [128, 4], every attention constant at the value llama.cpp's gemma4a graph hard-codes: chunk 12,
     left context 13, right 0, logit cap 50, residual weight 0.5, conv kernel 5), and a tiny vision tower
     (llama.cpp's converter writes no audio-only Gemma 4 projector; its outputs are not a reference);
  3. converts it with llama.cpp's convert_hf_to_gguf.py (from the llama-cpp-python sdist, as make_models.py)
     to gemma4a-f32.gguf (text) and, with --mmproj, gemma4a-mmproj-f32.gguf (audio + vision towers);
  4. checks that every audio tensor of the checkpoint is in the mmproj GGUF, value for value (after the
     converter's own transforms), and the mmproj metadata clip.cpp reads;
  5. writes two mono 16 kHz 16-bit WAV clips (1.0 s and 0.6 s) to ../audio/ and the transformers reference
     (torch CPU, float32, eager attention) of the logits after each clip to gemma4a.reference.json;
  6. writes the first clip again as MP3, OGG Vorbis, FLAC and AIFF (libsndfile, through soundfile), and the
     same clip as a 44.1 kHz stereo WAV, for the decoding tests: Gemini's audio types, and resampling.

The audio is fed to transformers as the log-mel features llama.cpp's mtmd computes (mtmd-audio.cpp,
mtmd_audio_preprocessor_gemma4a): periodic Hann window of 320, hop 160, 512-point FFT magnitude, 128 HTK mel
filters over 0-8000 Hz, log(max(mel, 1e-3)). transformers' Gemma4AudioFeatureExtractor takes log(mel + 1e-3)
instead; the difference is recorded in the JSON (hf_feature_extractor_max_abs_diff), not used.

The reference input ids follow llama.cpp's mtmd chunking: the text before the media marker with "<|audio>"
tokenized on its own, one audio soft token per audio position, "<audio|>" tokenized on its own, then the
text after the marker.

Same pinned environment as make_models.py, plus soundfile==0.14.0 (libsndfile 1.2.2) for step 6.

usage:
  python make_audio.py [--out DIR] [--audio-out DIR] [--llama-cpp-dir DIR] [--allow-version-mismatch]
"""
from __future__ import annotations

import json
import struct
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in testdata/models
import make_models as mm  # noqa: E402  (the text fixtures' generator: tokenizer, converter, checks)

SEED = 4100
N_NEW_TOKENS = 8
NAME = "gemma4a"
MEDIA_TOKENS = ["<|image>", "<image|>", "<|image|>", "<|audio>", "<audio|>", "<|audio|>"]
MEDIA_MARKER = "<__media__>"  # llama.cpp mtmd_default_marker()
CHAT_MESSAGES = [{"role": "user", "content": f"What is said here? {MEDIA_MARKER}"}]
SAMPLE_RATE = 16000
CLIPS = [("gemma4a-test.wav", 1.0), ("gemma4a-test2.wav", 0.6)]
# The first clip in Gemini's other audio types (soundfile format, subtype).
ENCODINGS = [("gemma4a-test.mp3", "MP3", "MPEG_LAYER_III"), ("gemma4a-test.ogg", "OGG", "VORBIS"),
             ("gemma4a-test.flac", "FLAC", "PCM_16"), ("gemma4a-test.aiff", "AIFF", "PCM_16")]
N_MEL = 128

AUDIO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, hidden_act="silu",
             subsampling_conv_channels=[N_MEL, 4], conv_kernel_size=5, residual_weight=0.5,
             attention_chunk_size=12, attention_context_left=13, attention_context_right=0,
             attention_logit_cap=50.0, attention_invalid_logits_value=-1e9, use_clipped_linears=False,
             rms_norm_eps=1e-6, gradient_clipping=1e10, output_proj_dims=32)
VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
              num_key_value_heads=2, head_dim=8, pooling_kernel_size=3, patch_size=16,
              position_embedding_size=64, use_clipped_linears=False, standardize=False)

WEIGHT_STD = mm.WEIGHT_STD
NORM_NOISE = mm.NORM_NOISE
BIAS_STD = 0.1


def log(*a):
    print(f"[{NAME}]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------------
def make_clip(seconds: float, k: int):
    """A deterministic voice-like mono signal: a few harmonics with a moving pitch, an envelope, a little
    noise; amplitude about 0.4, so that most mel bins sit well above the 1e-3 floor. 16-bit."""
    import numpy as np
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    rng = np.random.default_rng(SEED + k)
    f0 = 140.0 + 60.0 * k + 40.0 * np.sin(2 * np.pi * (1.5 + k) * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum((0.5 / h) * np.sin(h * phase + h * k) for h in range(1, 7))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t + k)) + 0.02 * rng.standard_normal(n)
    x = 0.4 * x / np.abs(x).max()
    return np.round(x * 32767).astype(np.int16)


def wav_bytes(pcm) -> bytes:
    data = pcm.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


OGG_SERIAL = 0x68656172  # "hear"


def fixed_ogg_serial(data: bytes) -> bytes:
    """libsndfile gives each Ogg stream a random serial number: set a fixed one in every page (and the
    page's CRC), so that two runs write the same file."""
    def crc(page: bytes) -> int:
        c = 0
        for byte in page:
            c ^= byte << 24
            for _ in range(8):
                c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
                c &= 0xFFFFFFFF
        return c
    out, at = bytearray(), 0
    while at < len(data):
        assert data[at:at + 4] == b"OggS", "not an Ogg page"
        nsegs = data[at + 26]
        size = 27 + nsegs + sum(data[at + 27:at + 27 + nsegs])
        page = bytearray(data[at:at + size])
        page[14:18] = struct.pack("<I", OGG_SERIAL)
        page[22:26] = b"\0\0\0\0"
        page[22:26] = struct.pack("<I", crc(bytes(page)))
        out += page
        at += size
    return bytes(out)


def write_encodings(audio_dir: Path, pcm) -> list:
    """The first clip as MP3, OGG Vorbis, FLAC and AIFF, and as 44.1 kHz stereo WAV (numpy's FFT resampling:
    what a decoder resampling back to 16 kHz must come close to)."""
    import numpy as np
    import soundfile as sf
    out = []
    x = pcm.astype(np.float32) / 32768.0
    for fname, fmt, subtype in ENCODINGS:
        p = audio_dir / fname
        sf.write(str(p), x, SAMPLE_RATE, format=fmt, subtype=subtype)
        if fmt == "OGG":
            p.write_bytes(fixed_ogg_serial(p.read_bytes()))
        out.append(dict(file=f"testdata/audio/{fname}", format=fmt, subtype=subtype, bytes=p.stat().st_size,
                        sha256=mm.sha256(p), lossless=subtype == "PCM_16"))
    n44 = int(round(len(x) * 44100 / SAMPLE_RATE))
    spec = np.fft.rfft(x.astype(np.float64))
    up = np.fft.irfft(spec, n=n44) * (n44 / len(x))
    up16 = np.round(np.clip(up, -1, 1) * 32767).astype("<i2")
    stereo = np.stack([up16, up16], axis=1).ravel()
    data = stereo.tobytes()
    fmt_chunk = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + b"data"
            + struct.pack("<I", len(data)) + data)
    p = audio_dir / "gemma4a-test-44k-stereo.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    out.append(dict(file=f"testdata/audio/{p.name}", format="WAV", subtype="PCM_16 stereo 44100 Hz",
                    bytes=p.stat().st_size, sha256=mm.sha256(p), lossless=False))
    return out


def llama_cpp_features(x):
    """mtmd_audio_preprocessor_gemma4a for one clip of at most 30 s: [T, N_MEL] float32."""
    import numpy as np
    n, win, hop, nfft, sr = len(x), 320, 160, 512, SAMPLE_RATE
    frames_n = (n + win // 2 - (win + 1)) // hop + 1
    buf = np.zeros((frames_n - 1) * hop + nfft, np.float32)
    buf[win // 2: win // 2 + n] = x
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)
    frames = np.stack([buf[i * hop: i * hop + win] for i in range(frames_n)]) * hann
    mag = np.abs(np.fft.rfft(frames, n=nfft)).astype(np.float32)

    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)
    pts = mel2hz(hz2mel(0.0) + (hz2mel(sr / 2) - hz2mel(0.0)) * np.arange(N_MEL + 2) / (N_MEL + 1))
    f = np.arange(nfft // 2 + 1) * sr / nfft
    lo, c, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    fb = np.where((f >= lo) & (f <= c), (f - lo) / np.maximum(c - lo, 1e-30),
                  np.where((f > c) & (f <= hi), (hi - f) / np.maximum(hi - c, 1e-30), 0.0)).astype(np.float32)
    mel = mag.astype(np.float64) @ fb.T.astype(np.float64)
    return np.log(np.maximum(mel, 1e-3)).astype(np.float32)


def n_audio_tokens(n_frames: int) -> int:
    """clip_n_output_tokens for GEMMA4A: two stride-2 convolutions."""
    n = n_frames
    for _ in range(2):
        n = (n - 1) // 2 + 1
    return n


def hf_feature_extractor_diff(x, ours) -> float:
    """Informational: transformers' own Gemma4AudioFeatureExtractor against llama.cpp's features."""
    import numpy as np
    import transformers as T
    fe = T.Gemma4AudioFeatureExtractor()
    out = fe([x], sampling_rate=SAMPLE_RATE, return_tensors="np")
    theirs = np.asarray(out["input_features"][0][: ours.shape[0]], dtype=np.float32)
    return float(np.abs(theirs - ours).max())


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
def make_config(tk: dict):
    import transformers as T
    text = mm.make_config("gemma4", tk)
    ids = tk["token_ids"]
    return T.Gemma4Config(text_config=text.to_dict(), vision_config=T.Gemma4VisionConfig(**VISION).to_dict(),
                          audio_config=T.Gemma4AudioConfig(**AUDIO).to_dict(),
                          boi_token_id=ids["<|image>"], eoi_token_id=ids["<image|>"],
                          image_token_id=ids["<|image|>"], boa_token_id=ids["<|audio>"],
                          eoa_token_index=ids["<audio|>"], audio_token_id=ids["<|audio|>"],
                          tie_word_embeddings=True, bos_token_id=tk["bos"], eos_token_id=tk["eos_ids"],
                          pad_token_id=tk["pad"])


def build_model(cfg, seed: int):
    import torch
    import transformers as T
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = T.Gemma4ForConditionalGeneration(cfg).eval().to(torch.float32)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            towers = ("audio_tower" in name or "embed_audio" in name or "vision_tower" in name
                      or "embed_vision" in name)
            if p.ndim == 1 and (not towers or "norm" in name):
                # Gemma 4 RMSNorms (text and towers) multiply by w directly; LayerNorm weights alike
                p.copy_(1.0 + NORM_NOISE * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:  # biases, per_dim_scale (softplus(w) scales the queries)
                p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
            else:
                std = mm.EMBED_STD["gemma4"] if "embed_tokens" in name else WEIGHT_STD
                p.copy_(std * torch.randn(p.shape, generator=g))
        for name, b in sorted(model.named_buffers(), key=lambda kv: kv[0]):
            if name.endswith("layer_scalar"):  # as make_models.py's gemma4
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return model


def load_model(hf_dir: Path):
    import torch
    import transformers as T
    return T.Gemma4ForConditionalGeneration.from_pretrained(str(hf_dir), torch_dtype=torch.float32,
                                                            attn_implementation="eager").eval()


def preprocessor_config() -> dict:
    """What the converter reads (image_mean / image_std for the vision tower), plus the audio front end."""
    return {"image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0], "feature_size": N_MEL,
            "sampling_rate": SAMPLE_RATE, "processor_class": "Gemma4Processor"}


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
class _TextView:
    """The language model with Gemma4ForCausalLM's names, for make_models.check_tensors."""

    def __init__(self, model):
        from types import SimpleNamespace
        tc = model.config.text_config
        self.config = SimpleNamespace(num_hidden_layers=tc.num_hidden_layers, tie_word_embeddings=True)
        lm = model.model.language_model
        self._sd = {"model." + k: v for k, v in lm.state_dict().items()}

    def state_dict(self):
        return self._sd


def check_audio_tensors(model, gguf_tensors: dict) -> dict:
    """Every audio tensor of the checkpoint is one GGUF tensor of the same values, after the converter's
    transforms (softplus of per_dim_scale; reshapes). Matched by value: the weights are random, so equal
    sorted values identify a tensor whatever its name."""
    import numpy as np
    import torch
    gg = {}
    for gname, (ttype, _shape, t) in gguf_tensors.items():
        if gname.startswith(("a.", "mm.a.")):
            v = mm.dequant(t).astype(np.float32).ravel()
            gg[gname] = (ttype, np.sort(v))
    report = {}
    used = set()
    for hf_name, w in sorted(model.state_dict().items()):
        if not ("audio_tower" in hf_name or "embed_audio" in hf_name):
            continue
        if "rel_pos_enc" in hf_name or "inv_timescales" in hf_name or "softcap" in hf_name:
            continue  # non-persistent buffers, recomputed by llama.cpp
        ref = w.detach().to(torch.float32)
        if hf_name.endswith("per_dim_scale"):
            ref = torch.nn.functional.softplus(ref)
        ref = np.sort(ref.numpy().ravel())
        hits = [g for g, (_, v) in gg.items() if g not in used and v.shape == ref.shape
                and np.array_equal(v, ref)]
        if len(hits) != 1:
            close = [g for g, (_, v) in gg.items() if v.shape == ref.shape and np.allclose(v, ref, atol=1e-6)]
            raise SystemExit(f"audio tensor {hf_name} {tuple(w.shape)}: {len(hits)} exact GGUF matches "
                             f"(close: {close})")
        used.add(hits[0])
        report[hf_name] = f"{hits[0]} {gg[hits[0]][0]}"
    left = sorted(set(gg) - used)
    return dict(tensors=report, gguf_audio_tensors_not_from_the_checkpoint=left)


def check_mmproj_metadata(kv: dict, hf_cfg) -> dict:
    want = {
        "clip.has_audio_encoder": True,
        "clip.audio.projector_type": "gemma4a",
        "clip.audio.num_mel_bins": N_MEL,
        "clip.audio.embedding_length": AUDIO["hidden_size"],
        "clip.audio.feed_forward_length": 4 * AUDIO["hidden_size"],
        "clip.audio.block_count": AUDIO["num_hidden_layers"],
        "clip.audio.attention.head_count": AUDIO["num_attention_heads"],
        "clip.audio.projection_dim": hf_cfg.text_config.hidden_size,
    }
    for k, v in want.items():
        if kv.get(k) != v:
            raise SystemExit(f"mmproj metadata {k} = {kv.get(k)!r}, expected {v!r}")
    return want


# ---------------------------------------------------------------------------------------------
# Prompt: mtmd chunks
# ---------------------------------------------------------------------------------------------
def mtmd_chunks(tokenizer, meta32: dict, text: str, tk: dict, n_audio: int) -> dict:
    """What llama.cpp's mtmd_tokenize (add_special = false, parse_special = true) makes of `text` with one
    audio clip, for PROJECTOR_TYPE_GEMMA4A (aud_beg "<|audio>", aud_end "<audio|>")."""
    before, after = text.split(MEDIA_MARKER)
    pieces = [before, "<|audio>", "<audio|>", after]
    toks = []
    for p in pieces:
        hf = tokenizer(p, add_special_tokens=False)["input_ids"]
        lc = mm.llamacpp_tokenize(meta32, p, add_special=False)
        if hf != lc:
            raise SystemExit(f"tokenization of {p!r}: HF {hf} vs llama.cpp emulation {lc}")
        toks.append(hf)
    ids = tk["token_ids"]
    assert toks[1] == [ids["<|audio>"]] and toks[2] == [ids["<audio|>"]], toks
    chunk1 = toks[0] + toks[1]
    chunk3 = toks[2] + toks[3]
    input_ids = chunk1 + [ids["<|audio|>"]] * n_audio + chunk3
    return dict(
        text_before_marker=before, text_after_marker=after,
        chunks=[dict(type="text", tokens=chunk1, pieces=tokenizer.convert_ids_to_tokens(chunk1)),
                dict(type="audio", n_tokens=n_audio, n_pos=n_audio),
                dict(type="text", tokens=chunk3, pieces=tokenizer.convert_ids_to_tokens(chunk3))],
        input_ids=input_ids, audio_positions=list(range(len(chunk1), len(chunk1) + n_audio)),
        n_audio_tokens=n_audio,
    )


# ---------------------------------------------------------------------------------------------
# Reference
# ---------------------------------------------------------------------------------------------
def forward_fn(model, features):
    import torch
    feats = torch.tensor(features)[None]
    mask = torch.ones(1, feats.shape[1], dtype=torch.bool)

    def fwd(cur):
        return model(input_ids=torch.tensor([cur]), input_features=feats, input_features_mask=mask).logits
    return fwd


def build(out_dir: Path, audio_dir: Path, lcpp: Path, env_info: dict) -> dict:
    import numpy as np
    import torch
    import transformers as T
    r5 = mm.r5
    clips = []
    for k, (fname, seconds) in enumerate(CLIPS):
        pcm = make_clip(seconds, k)
        p = audio_dir / fname
        p.write_bytes(wav_bytes(pcm))
        x = (pcm.astype(np.float32) / 32768.0)  # as miniaudio and hearth's decoder read s16
        clips.append((p, seconds, x))
        if k == 0:
            encodings = write_encodings(audio_dir, pcm)
    with tempfile.TemporaryDirectory(prefix=f"hearth-{NAME}-") as tmp:
        hf_dir = Path(tmp) / f"tiny-random-{NAME}"
        hf_dir.mkdir()
        tk = mm.build_gemma4_tokenizer(hf_dir, extra_specials=tuple(MEDIA_TOKENS))
        cfg = make_config(tk)
        model = build_model(cfg, SEED)
        model.save_pretrained(str(hf_dir), safe_serialization=True)
        T.GenerationConfig(bos_token_id=tk["bos"], eos_token_id=tk["eos_ids"], pad_token_id=tk["pad"],
                           do_sample=False).save_pretrained(str(hf_dir))
        (hf_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(), indent=2))
        tokenizer = T.AutoTokenizer.from_pretrained(str(hf_dir))

        text_gguf = out_dir / f"{NAME}-f32.gguf"
        mmproj_gguf = out_dir / f"{NAME}-mmproj-f32.gguf"
        mm.convert(lcpp, hf_dir, text_gguf, "f32", None, f"tiny-random-{NAME}")
        mm.convert(lcpp, hf_dir, mmproj_gguf, "f32", None, f"tiny-random-{NAME}", extra_args=("--mmproj",))
        log("gguf bytes:", text_gguf.stat().st_size, mmproj_gguf.stat().st_size)

        built = model
        model = load_model(hf_dir)
        hf_cfg = model.config
        sd0, sd1 = built.state_dict(), model.state_dict()
        if sorted(sd0) != sorted(sd1) or any(not torch.equal(sd0[k], sd1[k]) for k in sd0):
            raise SystemExit("checkpoint does not load back identically")
        meta32, t_tensors, t_kv = mm.read_gguf(text_gguf)
        tc = mm.check_tensors("gemma4", _TextView(model), t_tensors, "f32")
        _, p_tensors, p_kv = mm.read_gguf(mmproj_gguf)
        audio_report = check_audio_tensors(model, p_tensors)
        meta_checked = check_mmproj_metadata(p_kv, hf_cfg)
        if meta32["arch"] != "gemma4" or len(meta32["tokens"]) != hf_cfg.text_config.vocab_size:
            raise SystemExit("text GGUF arch / vocab")

        chat_text = tokenizer.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
        refs = []
        for p, seconds, x in clips:
            feats = llama_cpp_features(x)
            n_tok = n_audio_tokens(feats.shape[0])
            chunks = mtmd_chunks(tokenizer, meta32, chat_text, tk, n_tok)
            fwd = forward_fn(model, feats)
            g = mm.greedy(model, chunks["input_ids"], N_NEW_TOKENS, forward=fwd)
            with torch.no_grad():
                silent = forward_fn(model, np.full_like(feats, np.log(1e-3)))(chunks["input_ids"])[0, -1]
            refs.append(dict(
                audio=f"testdata/audio/{p.name}", audio_sha256=mm.sha256(p), seconds=seconds,
                samples=len(x), sample_rate=SAMPLE_RATE, n_mel_frames=int(feats.shape[0]),
                n_audio_tokens=n_tok, audio_tokens_per_second=r5(n_tok / seconds),
                hf_feature_extractor_max_abs_diff=r5(hf_feature_extractor_diff(x, feats)),
                prompt=chunks,
                last_logits=[r5(v) for v in g["last_logits"].tolist()],
                last_logits_argmax=int(torch.argmax(g["last_logits"])),
                greedy_ids=g["new_ids"],
                greedy_text=tokenizer.decode(g["new_ids"], skip_special_tokens=False),
                greedy_steps=g["steps"],
                greedy_min_margin=min(s["margin"] for s in g["steps"]),
                last_logits_max_abs_diff_if_the_audio_were_silence=r5((silent - g["last_logits"]).abs().max()),
            ))
            log(p.name, "tokens", n_tok, "margin", refs[-1]["greedy_min_margin"],
                "vs silence", refs[-1]["last_logits_max_abs_diff_if_the_audio_were_silence"])
        if min(r["greedy_min_margin"] for r in refs) <= 0:
            raise SystemExit("tie in greedy decoding")
        if min(r["last_logits_max_abs_diff_if_the_audio_were_silence"] for r in refs) < 0.05:
            raise SystemExit("the audio hardly moves the logits")

        files = {}
        for kind, p, tensors in (("text", text_gguf, t_tensors), ("mmproj", mmproj_gguf, p_tensors)):
            files[kind] = dict(file=p.name, bytes=p.stat().st_size, sha256=mm.sha256(p),
                               tensor_types=sorted({v[0] for v in tensors.values()}))
        files["text"]["max_weight_abs_diff_vs_hf"] = tc["max_matrix_abs_diff"]
        files["mmproj"]["audio_tensors"] = audio_report
        audio_files = [dict(file=f"testdata/audio/{p.name}", bytes=p.stat().st_size, sha256=mm.sha256(p),
                            seconds=s, sample_rate=SAMPLE_RATE, channels=1, bits=16) for p, s, _ in clips]
        return dict(
            family=NAME,
            hf_class=type(model).__name__,
            generated_by=dict(script="testdata/models/make_audio.py", seed=SEED, **env_info),
            hf_config={k: v for k, v in json.loads(hf_cfg.to_json_string(use_diff=False)).items()
                       if k != "_name_or_path"},
            preprocessor_config=preprocessor_config(),
            facts=dict(
                n_vocab=len(meta32["tokens"]), gguf_arch=meta32["arch"], bos_id=meta32["bos"],
                eos_id=meta32["eos"], add_bos=meta32["add_bos"], special_token_ids=tk["token_ids"],
                chat_template=meta32["chat_template"], media_marker=MEDIA_MARKER, sample_rate=SAMPLE_RATE,
                n_mel=N_MEL, mmproj_metadata_checked=meta_checked,
                audio_tokens_per_second=25, audio_chunk_seconds=30,
            ),
            gguf_files=files,
            audio_files=audio_files,
            encodings_of_the_first_clip=encodings,
            gguf_metadata=dict(text=t_kv, mmproj=p_kv),
            reference=dict(
                settings=dict(dtype="float32", attn_implementation="eager", device="cpu",
                              features="llama.cpp's gemma4a log-mel (see the docstring), float32",
                              decoding="greedy argmax, full recompute each step, no EOS stopping",
                              n_new_tokens=N_NEW_TOKENS, logits_rounding=5),
                messages=CHAT_MESSAGES, add_generation_prompt=True, text=chat_text,
                mtmd_add_special=False, mtmd_parse_special=True,
                clips=refs,
            ),
        )


def main():
    mm.media_fixture_main(__doc__, NAME, "--audio-out", HERE.parent / "audio", build, log)


if __name__ == "__main__":
    main()

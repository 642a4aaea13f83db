#!/usr/bin/env python3
"""Tiny random-weight Gemma 3 *vision* test model (GGUF + mmproj GGUF) + transformers reference outputs.

Deterministically:
  1. trains the tiny Gemma 3 SentencePiece tokenizer of make_models.py, with the three image tokens
     <start_of_image>, <end_of_image>, <image_soft_token> added as user-defined pieces;
  2. builds a tiny random-weight Gemma3ForConditionalGeneration: the text part shaped like
     make_models.py's gemma3 (hidden 64, 4 heads x 16, 2 KV heads, FFN 128, 6 layers, SWA window 8), and a
     SigLIP vision tower (hidden 32, 2 layers, 2 heads, FFN 64, image 64x64, patch 8 -> 8x8 patches),
     mm_tokens_per_image 4 (average pool 4x4 -> 2x2 image tokens);
  3. converts it with llama.cpp's convert_hf_to_gguf.py (from the llama-cpp-python sdist, as make_models.py)
     to gemma3v-f32.gguf (text) and, with --mmproj, gemma3v-mmproj-f32.gguf (vision tower + projector);
  4. checks every GGUF tensor of both files against the checkpoint, the mmproj metadata clip.cpp reads,
     and the tokenization of each text piece that llama.cpp's mtmd tokenizes;
  5. writes two 64x64 RGB test images (PNG) to ../images/ and the transformers reference outputs
     (torch CPU, float32, eager attention, bidirectional attention among the image tokens) to
     gemma3v.reference.json.

The image is fed to transformers as pixel_values built exactly as llama.cpp's mtmd/clip.cpp builds them
(u8 / 255, then (x - mean) / std with the GGUF's mean = std = 0.5; no resize because the image already
has the model's size). Transformers' Gemma3 image processor is not run (it needs torchvision or Pillow).

The reference input ids follow llama.cpp's mtmd chunking, not transformers' Gemma3Processor (which wraps
the image as "\\n\\n<start_of_image>...<end_of_image>\\n\\n"): each text piece around the media marker is
tokenized on its own, and "<start_of_image>" / "<end_of_image>" are tokenized on their own (see README.md).

Same pinned environment as make_models.py.

usage:
  python make_vision.py [--out DIR] [--images-out DIR] [--llama-cpp-dir DIR] [--allow-version-mismatch]
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in testdata/models
import make_models as mm  # noqa: E402  (the text fixtures' generator: tokenizer, converter, checks)

SEED = 2360  # picked from 2345..2364: greedy margins >= 0.1 for both images, continuations not one repeated token
N_NEW_TOKENS = 8
NAME = "gemma3v"
IMAGE_TOKENS = ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]
MEDIA_MARKER = "<__media__>"  # llama.cpp mtmd_default_marker()
CHAT_MESSAGES = [{"role": "user", "content": f"Describe this image: {MEDIA_MARKER}"}]

VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_channels=3,
              image_size=64, patch_size=8, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
              vision_use_head=False)
MM_TOKENS_PER_IMAGE = 4
IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]
# llama.cpp clip.cpp (PROJECTOR_TYPE_GEMMA3): avg-pool kernel = hparams.n_merge, default 4, overridden by
# clip.vision.projector.scale_factor, which the converter writes only when it is not 4.
LLAMA_CPP_DEFAULT_GEMMA3_MERGE = 4

WEIGHT_STD = mm.WEIGHT_STD      # text and vision matrices
EMBED_STD = 0.1                 # text token embeddings (as make_models.py's gemma3)
PATCH_STD = 0.1                 # conv patch embedding, fan-in 3*8*8 = 192
NORM_NOISE = mm.NORM_NOISE      # norm weights: 1 + N(0, .1) (LayerNorm) or N(0, .1) (Gemma3RMSNorm, 1 + w)
BIAS_STD = 0.1                  # SigLIP biases


def log(*a):
    print("[make_vision]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Test images and a minimal deterministic PNG writer (stored deflate blocks: no zlib-version dependence)
# ---------------------------------------------------------------------------------------------
def make_images(size: int):
    """Two different RGB patterns, not symmetric under transposition or flips."""
    import numpy as np
    y, x = np.mgrid[0:size, 0:size]
    img1 = np.stack([
        x * 255 // (size - 1),                                  # R: left -> right gradient
        y * 255 // (size - 1),                                  # G: top -> bottom gradient
        np.where(((x // 8) + (y // 16)) % 2 == 0, 230, 25),     # B: 8x16 checkerboard
    ], axis=-1).astype(np.uint8)
    img2 = np.stack([
        np.where((x + 2 * y) % 24 < 12, 240, 10),               # R: diagonal stripes
        ((x - 40) ** 2 + (y - 20) ** 2) % 256,                  # G: rings around (40, 20)
        255 - (x * y) * 255 // ((size - 1) ** 2),               # B: hyperbolic gradient
    ], axis=-1).astype(np.uint8)
    return img1, img2


def png_bytes(rgb) -> bytes:
    h, w, c = rgb.shape
    assert c == 3 and rgb.dtype.name == "uint8"
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))  # filter type 0 (None) on every row
    # zlib stream with stored (uncompressed) deflate blocks
    z = bytearray(b"\x78\x01")
    for i in range(0, len(raw), 65535):
        blk = raw[i:i + 65535]
        final = 1 if i + 65535 >= len(raw) else 0
        z += struct.pack("<BHH", final, len(blk), 0xFFFF ^ len(blk)) + blk
    z += struct.pack(">I", zlib.adler32(raw))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    out += chunk(b"IDAT", bytes(z)) + chunk(b"IEND", b"")
    assert zlib.decompress(bytes(z)) == raw
    return out


def clip_pixel_values(rgb):
    """pixel_values [1, 3, H, W] float32 exactly as mtmd/clip.cpp computes them for gemma3 when the image
    already has image_size x image_size: (float)u8 / 255.0f, then (x - mean) / std in float32."""
    import numpy as np
    import torch
    f = rgb.astype(np.float32) / np.float32(255.0)
    f = (f - np.asarray(IMAGE_MEAN, np.float32)) / np.asarray(IMAGE_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1)[None]))


def hf_processor_equivalence(rgb) -> dict:
    """What transformers' Gemma3 image processor (torchvision backend) would compute, emulated with torch:
    bilinear antialiased resize to the same size, then the fused rescale+normalize (x - 127.5) / 127.5."""
    import torch
    u = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None].to(torch.float32)
    same = torch.nn.functional.interpolate(u, size=tuple(u.shape[-2:]), mode="bilinear", antialias=True,
                                           align_corners=False)
    mean = torch.tensor(IMAGE_MEAN) * (1.0 / (1 / 255))
    std = torch.tensor(IMAGE_STD) * (1.0 / (1 / 255))
    hf = (u - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    return dict(same_size_bilinear_resize_is_identity=bool(torch.equal(same, u)),
                fused_rescale_normalize_max_abs_diff=float((hf - clip_pixel_values(rgb)).abs().max()))


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
def make_config(tk: dict):
    import transformers as T
    text = mm.make_config("gemma3", tk)  # same text shape as the text-only gemma3 fixture
    vision = T.SiglipVisionConfig(**VISION)
    ids = tk["token_ids"]
    return T.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(),
                          mm_tokens_per_image=MM_TOKENS_PER_IMAGE, boi_token_index=ids["<start_of_image>"],
                          eoi_token_index=ids["<end_of_image>"], image_token_index=ids["<image_soft_token>"],
                          tie_word_embeddings=True, bos_token_id=tk["bos"], eos_token_id=tk["eos_ids"],
                          pad_token_id=tk["pad"])


def build_model(cfg, seed: int):
    import torch
    import transformers as T
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = T.Gemma3ForConditionalGeneration(cfg).eval().to(torch.float32)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            vision = ".vision_tower." in name or name.startswith("vision_tower.")
            if name.endswith("mm_input_projection_weight"):
                # the converter always stores this one as F16 (Gemma3VisionModel.tensor_force_quant):
                # make the checkpoint F16-exact so that the GGUF holds exactly the HF weights
                p.copy_((WEIGHT_STD * torch.randn(p.shape, generator=g)).to(torch.float16).to(torch.float32))
            elif p.ndim == 1 and not vision:  # Gemma3RMSNorm (text norms, mm_soft_emb_norm): applies 1 + w
                p.copy_(NORM_NOISE * torch.randn(p.shape, generator=g))
            elif p.ndim == 1 and ("layer_norm" in name or "post_layernorm" in name):  # SigLIP LayerNorm
                p.copy_((1.0 if name.endswith(".weight") else 0.0) + NORM_NOISE * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:  # SigLIP linear / conv biases
                p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
            else:
                std = (EMBED_STD if "embed_tokens" in name else PATCH_STD if "patch_embedding" in name
                       else WEIGHT_STD)
                p.copy_(std * torch.randn(p.shape, generator=g))
    return model


def save_checkpoint(model, hf_dir: Path) -> None:
    """save_pretrained, then the real Gemma 3 checkpoints' key layout: transformers 5 saves the SigLIP tower as
    vision_tower.encoder..., the hub checkpoints (and llama.cpp's converter) have vision_tower.vision_model...
    transformers loads both (its SiglipVisionModel conversion mapping strips the prefix)."""
    from safetensors.torch import load_file, save_file
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    f = hf_dir / "model.safetensors"
    sd = load_file(str(f))
    sd = {("vision_tower.vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else k): v
          for k, v in sorted(sd.items())}
    save_file(sd, str(f), metadata={"format": "pt"})


def load_model(hf_dir: Path):
    import torch
    import transformers as T
    return T.Gemma3ForConditionalGeneration.from_pretrained(str(hf_dir), torch_dtype=torch.float32,
                                                            attn_implementation="eager").eval()


def preprocessor_config() -> dict:
    """As the real Gemma 3 repos' preprocessor_config.json, for this image size and token count. The converter
    reads image_mean / image_std (-> clip.vision.image_mean / image_std) and image_seq_length."""
    s = VISION["image_size"]
    return {"do_convert_rgb": None, "do_normalize": True, "do_pan_and_scan": None, "do_rescale": True,
            "do_resize": True, "image_mean": IMAGE_MEAN, "image_processor_type": "Gemma3ImageProcessor",
            "image_seq_length": MM_TOKENS_PER_IMAGE, "image_std": IMAGE_STD, "pan_and_scan_max_num_crops": None,
            "pan_and_scan_min_crop_size": None, "pan_and_scan_min_ratio_to_activate": None,
            "processor_class": "Gemma3Processor", "resample": 2, "rescale_factor": 1 / 255,
            "size": {"height": s, "width": s}}


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
class _TextView:
    """The language model with Gemma3ForCausalLM's names (model.layers..., model.embed_tokens...), so that
    make_models.check_tensors can check the text GGUF."""

    def __init__(self, model):
        from types import SimpleNamespace
        tc = model.config.text_config
        self.config = SimpleNamespace(num_hidden_layers=tc.num_hidden_layers, tie_word_embeddings=True)
        self._sd = {"model." + k: v for k, v in model.model.language_model.state_dict().items()}

    def state_dict(self):
        return self._sd


def check_mmproj_tensors(model, gguf_tensors: dict) -> dict:
    import gguf
    import numpy as np
    import torch
    nmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, VISION["num_hidden_layers"])
    report = {}
    seen = set()
    for hf_name, w in sorted(model.state_dict().items()):
        if not hf_name.startswith(("model.vision_tower.", "model.multi_modal_projector.")):
            continue
        name = hf_name[len("model."):].replace("_weight", ".weight")  # mm_input_projection_weight
        if name.startswith("vision_tower."):  # checkpoint layout (see save_checkpoint)
            name = "vision_tower.vision_model." + name[len("vision_tower."):]
        gname = nmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if gname is None or gname not in gguf_tensors:
            raise SystemExit(f"mmproj: HF tensor {hf_name} has no GGUF tensor ({gname})")
        seen.add(gname)
        ttype, shape, t = gguf_tensors[gname]
        g = mm.dequant(t)
        ref = w.detach().to(torch.float32).numpy().copy()
        if "mm_soft_emb_norm" in name:
            ref = ref + 1.0  # converter folds Gemma3RMSNorm's (1 + w)
        if g.shape != ref.shape:
            if ref.size != g.size:
                raise SystemExit(f"mmproj: {hf_name} {ref.shape} vs {gname} {g.shape}")
            ref = ref.reshape(g.shape)
        d = float(np.abs(g - ref).max())
        if d != 0.0:
            raise SystemExit(f"mmproj: tensor {hf_name} -> {gname} ({ttype}) differs by {d}")
        report[hf_name] = dict(gguf=gname, type=ttype, ggml_shape=shape)
    extra = sorted(set(gguf_tensors) - seen)
    if extra:
        raise SystemExit(f"mmproj: GGUF tensors with no HF tensor: {extra}")
    return report


def check_mmproj_metadata(kv: dict, hf_cfg) -> dict:
    """The keys clip.cpp reads for a gemma3 projector, against the HF config."""
    import numpy as np
    v = hf_cfg.vision_config
    want = {
        "general.architecture": "clip",
        "clip.has_vision_encoder": True,
        "clip.projector_type": "gemma3",
        "clip.use_gelu": True,
        "clip.vision.image_size": v.image_size,
        "clip.vision.patch_size": v.patch_size,
        "clip.vision.embedding_length": v.hidden_size,
        "clip.vision.feed_forward_length": v.intermediate_size,
        "clip.vision.block_count": v.num_hidden_layers,
        "clip.vision.attention.head_count": v.num_attention_heads,
        "clip.vision.projection_dim": hf_cfg.text_config.hidden_size,
    }
    for k, val in want.items():
        if kv.get(k) != val:
            raise SystemExit(f"mmproj metadata {k} = {kv.get(k)!r}, expected {val!r}")
    if not np.isclose(kv["clip.vision.attention.layer_norm_epsilon"], v.layer_norm_eps, rtol=1e-6, atol=0):
        raise SystemExit("mmproj layer_norm_epsilon")
    for k, ref in (("clip.vision.image_mean", IMAGE_MEAN), ("clip.vision.image_std", IMAGE_STD)):
        if [float(x) for x in kv[k]] != ref:
            raise SystemExit(f"mmproj {k} = {kv[k]}")
    # pooling: HF kernel = patches_per_side / sqrt(mm_tokens_per_image); clip.cpp kernel = n_merge
    per_side = v.image_size // v.patch_size
    hf_kernel = per_side // int(hf_cfg.mm_tokens_per_image ** 0.5)
    lc_kernel = kv.get("clip.vision.projector.scale_factor", LLAMA_CPP_DEFAULT_GEMMA3_MERGE)
    if hf_kernel != lc_kernel or (per_side // lc_kernel) ** 2 != hf_cfg.mm_tokens_per_image:
        raise SystemExit(f"pooling kernel: HF {hf_kernel}, llama.cpp {lc_kernel}")
    return dict(patches_per_side=per_side, hf_avg_pool_kernel=hf_kernel, llama_cpp_n_merge=lc_kernel,
                scale_factor_key_written="clip.vision.projector.scale_factor" in kv,
                n_image_tokens=(per_side // lc_kernel) ** 2)


# ---------------------------------------------------------------------------------------------
# Prompt: mtmd chunks
# ---------------------------------------------------------------------------------------------
def mtmd_chunks(tokenizer, meta32: dict, text: str, tk: dict) -> dict:
    """What llama.cpp's mtmd_tokenize (add_special = false, parse_special = true) makes of `text` with one
    image, for PROJECTOR_TYPE_GEMMA3 (img_beg "<start_of_image>", img_end "<end_of_image>"): every piece is
    tokenized separately and text tokens are appended to the current text chunk."""
    before, after = text.split(MEDIA_MARKER)
    pieces = [before, "<start_of_image>", "<end_of_image>", after]
    toks = []
    for p in pieces:
        hf = tokenizer(p, add_special_tokens=False)["input_ids"]
        lc = mm.llamacpp_tokenize(meta32, p, add_special=False)
        if hf != lc:
            raise SystemExit(f"tokenization of {p!r}: HF {hf} vs llama.cpp emulation {lc}")
        toks.append(hf)
    ids = tk["token_ids"]
    assert toks[1] == [ids["<start_of_image>"]] and toks[2] == [ids["<end_of_image>"]], toks
    n_img = MM_TOKENS_PER_IMAGE
    chunk1 = toks[0] + toks[1]
    chunk3 = toks[2] + toks[3]
    input_ids = chunk1 + [ids["<image_soft_token>"]] * n_img + chunk3
    image_positions = list(range(len(chunk1), len(chunk1) + n_img))
    return dict(
        text_before_marker=before, text_after_marker=after,
        chunks=[dict(type="text", tokens=chunk1, pieces=tokenizer.convert_ids_to_tokens(chunk1)),
                dict(type="image", n_tokens=n_img, n_pos=n_img),
                dict(type="text", tokens=chunk3, pieces=tokenizer.convert_ids_to_tokens(chunk3))],
        input_ids=input_ids, image_positions=image_positions, n_image_tokens=n_img,
        token_type_ids=[1 if i in image_positions else 0 for i in range(len(input_ids))],
        # informational: would tokenizing the text in one piece (image markers in place) give the same ids?
        same_ids_if_tokenized_in_one_piece=(
            tokenizer(text.replace(MEDIA_MARKER, "<start_of_image><end_of_image>"), add_special_tokens=False)
            ["input_ids"] == toks[0] + toks[1] + toks[2] + toks[3]),
    )


# ---------------------------------------------------------------------------------------------
# Reference
# ---------------------------------------------------------------------------------------------
def forward_fn(model, pixel_values, image_positions: list[int], causal_image: bool = False):
    """ids -> logits, with the image; token_type_ids mark the image positions (bidirectional attention among
    them, as llama.cpp's non-causal decoding of the image chunk) unless causal_image."""
    import torch

    def fwd(cur):
        tt = torch.zeros(1, len(cur), dtype=torch.long)
        tt[0, image_positions] = 1
        return model(input_ids=torch.tensor([cur]), pixel_values=pixel_values,
                     token_type_ids=None if causal_image else tt).logits
    return fwd


def reference_for(model, tokenizer, chunks: dict, pixel_values) -> dict:
    import torch
    r5 = mm.r5
    fwd = forward_fn(model, pixel_values, chunks["image_positions"])
    g = mm.greedy(model, chunks["input_ids"], N_NEW_TOKENS, forward=fwd)
    with torch.no_grad():
        causal = forward_fn(model, pixel_values, chunks["image_positions"], causal_image=True)(
            chunks["input_ids"])[0, -1]
    return dict(
        last_logits=[r5(x) for x in g["last_logits"].tolist()],
        last_logits_argmax=int(torch.argmax(g["last_logits"])),
        greedy_ids=g["new_ids"],
        greedy_text=tokenizer.decode(g["new_ids"], skip_special_tokens=False),
        greedy_steps=g["steps"],
        greedy_min_margin=min(s["margin"] for s in g["steps"]),
        last_logits_max_abs_diff_if_image_attention_were_causal=r5((causal - g["last_logits"]).abs().max()),
        _last_logits_t=g["last_logits"],
    )


def emulate(hf_dir: Path, seqs: list, kv_f16: bool) -> dict:
    """Estimate of llama.cpp's CPU numerics for F32 GGUFs: max |dlogit| over the last prompt position and the
    teacher-forced steps, and max |d image feature|, when
      - GELU (text and vision) goes through ggml's F16 table,
      - the projector input is rounded to F16 (mm.input_projection is F16, so ggml's CPU matmul rounds the
        activations to its vec_dot_type F16),
      - the vision K and V are rounded to F16 (clip.cpp casts them for flash attention, on by default),
      - the text K and V are rounded to F16 (llama.cpp's default KV cache) if kv_f16."""
    import torch
    TableGelu = mm._table_gelu_class()
    ref = load_model(hf_dir)
    m = load_model(hf_dir)
    f16 = lambda x: x.to(torch.float16).to(torch.float32)  # noqa: E731
    hooks = []
    for name, mod in m.named_modules():
        if name.endswith(("k_proj", "v_proj")) and (kv_f16 or "vision_tower" in name):
            hooks.append(mod.register_forward_hook(lambda _m, _a, out: f16(out)))
        if name.endswith("mm_soft_emb_norm"):
            hooks.append(mod.register_forward_hook(lambda _m, _a, out: f16(out)))
        if hasattr(mod, "act_fn"):
            mod.act_fn = TableGelu(mod.act_fn)
        if hasattr(mod, "activation_fn"):
            mod.activation_fn = TableGelu(mod.activation_fn)
    worst = 0.0
    worst_feat = 0.0
    with torch.no_grad():
        for ids, pos, pv in seqs:
            a = forward_fn(ref, pv, pos)(ids)[0]
            b = forward_fn(m, pv, pos)(ids)[0]
            n_prompt = len(ids) - (N_NEW_TOKENS - 1)
            worst = max(worst, float((a[n_prompt - 1:] - b[n_prompt - 1:]).abs().max()))
            fa = ref.model.get_image_features(pv).pooler_output
            fb = m.model.get_image_features(pv).pooler_output
            worst_feat = max(worst_feat, float((fa - fb).abs().max()))
    for h in hooks:
        h.remove()
    return dict(max_abs_logit_diff=mm.r5(worst), max_abs_image_feature_diff=mm.r5(worst_feat))


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def build(out_dir: Path, img_dir: Path, lcpp: Path, env_info: dict) -> dict:
    import torch
    import transformers as T
    r5 = mm.r5
    imgs = make_images(VISION["image_size"])
    img_files = []
    for i, img in enumerate(imgs):
        p = img_dir / f"{NAME}-test{'' if i == 0 else i + 1}.png"
        p.write_bytes(png_bytes(img))
        img_files.append(p)
    with tempfile.TemporaryDirectory(prefix=f"hearth-{NAME}-") as tmp:
        hf_dir = Path(tmp) / f"tiny-random-{NAME}"
        hf_dir.mkdir()
        tk = mm.build_gemma3_tokenizer(hf_dir, extra_specials=tuple(IMAGE_TOKENS))
        cfg = make_config(tk)
        model = build_model(cfg, SEED)
        save_checkpoint(model, hf_dir)
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
        tc = mm.check_tensors("gemma3", _TextView(model), t_tensors, "f32")
        _, p_tensors, p_kv = mm.read_gguf(mmproj_gguf)
        p_report = check_mmproj_tensors(model, p_tensors)
        pooling = check_mmproj_metadata(p_kv, hf_cfg)
        if meta32["arch"] != "gemma3" or len(meta32["tokens"]) != hf_cfg.text_config.vocab_size:
            raise SystemExit("text GGUF arch / vocab")
        types = {t: int(meta32["types"][i]) for t, i in tk["token_ids"].items()}

        chat_text = tokenizer.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
        chunks = mtmd_chunks(tokenizer, meta32, chat_text, tk)

        refs = []
        feats = []
        for i, (img, p) in enumerate(zip(imgs, img_files)):
            pv = clip_pixel_values(img)
            with torch.no_grad():
                f = model.model.get_image_features(pv).pooler_output[0]
            feats.append(f)
            r = reference_for(model, tokenizer, chunks, pv)
            entry = dict(image=f"testdata/images/{p.name}", image_sha256=mm.sha256(p),
                         image_rgb_sha256=hashlib.sha256(img.tobytes()).hexdigest(),
                         hf_processor_emulation=hf_processor_equivalence(img))
            if i == 0:
                entry["image_features"] = [[r5(x) for x in row] for row in f.tolist()]
            entry.update(r)
            refs.append(entry)
        d_logits = float((refs[0]["_last_logits_t"] - refs[1]["_last_logits_t"]).abs().max())
        d_feats = float((feats[0] - feats[1]).abs().max())
        log("image 1 vs 2: max |d last_logits|", d_logits, "max |d features|", d_feats)
        if d_logits < 0.05 or d_feats < 0.05:
            raise SystemExit("the two images give (almost) the same outputs")
        if min(r["greedy_min_margin"] for r in refs) <= 0:
            raise SystemExit("tie in greedy decoding")
        for r in refs:
            r.pop("_last_logits_t")

        seqs = [(chunks["input_ids"] + r["greedy_ids"][:-1], chunks["image_positions"], clip_pixel_values(img))
                for r, img in zip(refs, imgs)]
        est = {"f32_kv_f32": emulate(hf_dir, seqs, kv_f16=False), "f32": emulate(hf_dir, seqs, kv_f16=True)}
        log("emulated:", est)

        files = {}
        for kind, p, kv, tensors in (("text", text_gguf, t_kv, t_tensors), ("mmproj", mmproj_gguf, p_kv, p_tensors)):
            files[kind] = dict(file=p.name, bytes=p.stat().st_size, sha256=mm.sha256(p),
                               tensor_types=sorted({v[0] for v in tensors.values()}))
        files["text"]["max_weight_abs_diff_vs_hf"] = tc["max_matrix_abs_diff"]
        files["text"]["gguf_only_tensors"] = tc["extra_gguf_tensors"]
        files["mmproj"]["tensors"] = p_report
        files["mmproj"]["max_weight_abs_diff_vs_hf"] = 0.0
        images = [dict(file=f"testdata/images/{p.name}", bytes=p.stat().st_size, sha256=mm.sha256(p),
                       width=VISION["image_size"], height=VISION["image_size"]) for p in img_files]

        return dict(
            family=NAME,
            hf_class=type(model).__name__,
            generated_by=dict(script="testdata/models/make_vision.py", seed=SEED, **env_info),
            hf_config={k: v for k, v in json.loads(hf_cfg.to_json_string(use_diff=False)).items()
                       if k != "_name_or_path"},
            preprocessor_config=preprocessor_config(),
            facts=dict(
                n_vocab=len(meta32["tokens"]), gguf_arch=meta32["arch"], tokenizer_model=meta32["model"],
                bos_id=meta32["bos"], eos_id=meta32["eos"], add_bos=meta32["add_bos"],
                hf_eos_token_ids=tk["eos_ids"], expected_llama_cpp_eog_ids=sorted(
                    {tk["token_ids"][t] for t in ("<eos>", "<end_of_turn>")}),
                special_token_ids=tk["token_ids"], gguf_token_types=types, chat_template=meta32["chat_template"],
                media_marker=MEDIA_MARKER, image_size=VISION["image_size"], n_image_tokens=chunks["n_image_tokens"],
                pooling=pooling, image_mean=IMAGE_MEAN, image_std=IMAGE_STD, mmproj_n_embd=hf_cfg.text_config.hidden_size,
                mtmd_decode_use_non_causal=True,
            ),
            gguf_files=files,
            images=images,
            gguf_metadata=dict(text=t_kv, mmproj=p_kv),
            emulated_max_abs_diff=est,
            reference=dict(
                settings=dict(dtype="float32", attn_implementation="eager", device="cpu",
                              attention="causal, except bidirectional among the image tokens (token_type_ids)",
                              pixel_values="built as clip.cpp: (u8 / 255 - 0.5) / 0.5, float32, no resize",
                              decoding="greedy argmax, full recompute each step, no EOS stopping",
                              n_new_tokens=N_NEW_TOKENS, logits_rounding=5),
                prompt=dict(messages=CHAT_MESSAGES, add_generation_prompt=True, text=chat_text,
                            mtmd_add_special=False, mtmd_parse_special=True,
                            **chunks),
                images=refs,
                image1_vs_image2=dict(last_logits_max_abs_diff=r5(d_logits), image_features_max_abs_diff=r5(d_feats)),
            ),
        )


def main():
    mm.media_fixture_main(__doc__, NAME, "--images-out", HERE.parent / "images", build, log)


if __name__ == "__main__":
    main()

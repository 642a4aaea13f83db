#!/usr/bin/env python3
# Regenerates the reference renderings in expected/ for every chat template in
# ../shared/fixtures/chat-templates (relative to the repository root) and every
# case in cases.json, using Hugging Face transformers' own chat-template renderer.
#
# Pinned reference environment (the fixtures were generated with exactly these):
#   Python        3.11.7
#   transformers  5.24.0   (pip install transformers==5.24.0 jinja2==3.1.6)
#   jinja2        3.1.6
#   MarkupSafe    3.0.4    (pulled in by jinja2)
# torch is not needed: only transformers.utils.chat_template_utils is used.
#
# What this replicates (read from transformers 5.24.0 source):
#   * tokenizer.apply_chat_template(conversation, tools=..., add_generation_prompt=...,
#     tokenize=False, **kwargs) does:
#       1. _normalize_chat_messages(): message objects -> dicts, keys whose value is None dropped;
#       2. template_kwargs = {**tokenizer.special_tokens_map, **kwargs};
#       3. render_jinja_template(conversations=[messages], tools=tools, documents=None,
#          chat_template=..., add_generation_prompt=..., **template_kwargs).
#     We call steps 1 and 3 directly, and build step 2 from tokens.json (bos_token,
#     eos_token) plus the case's "kwargs" (e.g. enable_thinking).
#   * render_jinja_template() compiles with
#       ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
#                                     extensions=[AssistantTracker, jinja2.ext.loopcontrols])
#     (keep_trailing_newline is jinja2's default False) and adds:
#       filters["tojson"]  = json.dumps(x, ensure_ascii=False, indent=None, separators=None,
#                                       sort_keys=False)   (kwargs overridable from the template)
#       globals["raise_exception"](msg) -> raises jinja2.exceptions.TemplateError(msg)
#       globals["strftime_now"](fmt)    -> datetime.now().strftime(fmt)
#       globals["dict"], globals["namespace"] (namespace rejects "_"-prefixed attribute names)
#     and renders with variables: messages, tools (None when absent), documents (None),
#     add_generation_prompt, bos_token, eos_token, and any extra kwargs.
#   * It also adds, to any message carrying reasoning_content/thinking/reasoning, both a
#     "thinking" key (first) and "reasoning_content" key (last) with that value.
#
# Determinism: strftime_now() is pinned to FIXED_NOW below (2025-03-14 10:00:00, so
# strftime_now("%d %b %Y") == "14 Mar 2025"). The date deliberately differs from the
# "26 Jul 2024" fallback hard-coded in the Llama 3.x templates, so a renderer that forgets to
# define strftime_now fails the Llama 3.2 fixtures instead of silently passing. The Rust tests
# must install a strftime_now global that formats this same fixed datetime.
#
# Usage (from the repository root):
#   python3 -m venv /tmp/tmpl-venv
#   /tmp/tmpl-venv/bin/pip install transformers==5.24.0 jinja2==3.1.6
#   /tmp/tmpl-venv/bin/python testdata/chat-templates/make_expected.py

import argparse
import datetime as _dt
import json
import shutil
import sys
from pathlib import Path

import jinja2
import jinja2.exceptions
import transformers
from transformers.utils import chat_template_utils as ctu

PINNED = {"transformers": "5.24.0", "jinja2": "3.1.6"}
FIXED_NOW = _dt.datetime(2025, 3, 14, 10, 0, 0)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_TEMPLATES = REPO_ROOT.parent / "shared" / "fixtures" / "chat-templates"


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW if tz is None else FIXED_NOW.replace(tzinfo=tz)


# strftime_now inside transformers' compiled environment calls the module-global `datetime.now()`.
ctu.datetime = _FixedDatetime


def render(template_src, case, tokens):
    messages = ctu._normalize_chat_messages(case["messages"])  # as apply_chat_template does
    template_kwargs = {**tokens, **case.get("kwargs", {})}  # kwargs override special tokens
    rendered, _ = ctu.render_jinja_template(
        conversations=[messages],
        tools=case.get("tools"),
        documents=None,
        chat_template=template_src,
        add_generation_prompt=case.get("add_generation_prompt", False),
        **template_kwargs,
    )
    return rendered[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--templates", type=Path, default=DEFAULT_TEMPLATES)
    ap.add_argument("--allow-version-mismatch", action="store_true")
    args = ap.parse_args()

    found = {"transformers": transformers.__version__, "jinja2": jinja2.__version__}
    if found != PINNED and not args.allow_version_mismatch:
        sys.exit(f"version mismatch: want {PINNED}, have {found} (pass --allow-version-mismatch to override)")

    cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))["cases"]
    tokens_by_template = json.loads((HERE / "tokens.json").read_text(encoding="utf-8"))
    templates = sorted(args.templates.glob("*.jinja"))
    if not templates:
        sys.exit(f"no templates under {args.templates}")

    out_root = HERE / "expected"
    manifest = {}
    n_ok = n_err = 0
    for tpath in templates:
        stem = tpath.stem
        if stem not in tokens_by_template:
            sys.exit(f"tokens.json has no entry for {stem}")
        tokens = tokens_by_template[stem]
        with open(tpath, encoding="utf-8", newline="") as f:  # exact bytes, no newline translation
            src = f.read()
        out_dir = out_root / stem
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        manifest[stem] = {}
        for case in cases:
            name = case["name"]
            try:
                text = render(src, case, tokens)
            except jinja2.exceptions.TemplateError as e:
                kind = "raise_exception" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
                (out_dir / f"{name}.error").write_bytes(str(e).encode("utf-8"))
                manifest[stem][name] = {"status": "error", "error_type": kind}
                n_err += 1
            else:
                (out_dir / f"{name}.txt").write_bytes(text.encode("utf-8"))
                manifest[stem][name] = {"status": "ok"}
                n_ok += 1

    with open(out_root / "manifest.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump({"generator": {**found, "fixed_now": FIXED_NOW.isoformat()}, "results": manifest},
                  f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
    print(f"{len(templates)} templates x {len(cases)} cases: {n_ok} .txt, {n_err} .error")


if __name__ == "__main__":
    main()

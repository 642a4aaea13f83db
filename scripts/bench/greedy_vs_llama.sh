#!/usr/bin/env bash
# hearth's greedy output on a real model, token for token against llama.cpp's
# own server on the same GGUF:
#
#   bash scripts/bench/greedy_vs_llama.sh [MODEL.gguf]
#
# Default model: hearth's built-in SmolLM2-135M-Instruct (fetched and cached
# by `hearth serve` itself). Builds llama-server from the llama-cpp-python
# sdist in $HEARTH_BENCH_DIR (default ../hearth-bench, never inside the repo;
# shared with compare.sh), builds hearth (release) unless
# HEARTH_BENCH_NO_CARGO=1 or HEARTH_BIN names a hearth binary, serves the model on both (loopback), and for each
# prompt compares:
#   - the chat prompt's token count: hearth's countTokens vs llama-server's
#     /apply-template (--jinja, the GGUF's template) then /tokenize;
#   - the greedy reply's token ids: hearth's generateContent at temperature 0
#     (responseLogprobs gives each chosen token's id) vs llama-server's
#     /completion of the same rendered prompt at temperature 0
#     (return_tokens), N_PREDICT tokens at most, both stopping at end of turn.
# Prints one line per prompt and exits non-zero on any difference.
set -euo pipefail
{
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${HEARTH_BENCH_DIR:-$REPO/../hearth-bench}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in
  "$REPO/"*) echo "greedy_vs_llama.sh: HEARTH_BENCH_DIR ($WORK) must be outside the repo" >&2; exit 1 ;;
esac
N_PREDICT=${N_PREDICT:-48}
THREADS=${THREADS:-2}
log() { printf '[greedy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=scripts/bench/llama_cpp.sh
source "$REPO/scripts/bench/llama_cpp.sh"
build_llama_cpp llama-server

HEARTH=${HEARTH_BIN:-$REPO/target/release/hearth}
if [ -z "${HEARTH_BIN:-}" ] && [ "${HEARTH_BENCH_NO_CARGO:-0}" != 1 ]; then
  log "building hearth (release)"
  (cd "$REPO" && bash scripts/deps.sh && cargo build --release --locked -p hearth-cli)
fi
[ -x "$HEARTH" ] || die "missing $HEARTH"

PIDS=()
LOGS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "${LOGS[@]}"' EXIT
# wait_for URL LOG PID
wait_for() {
  for _ in $(seq 1 3000); do
    kill -0 "$3" 2>/dev/null || { cat "$2" >&2; die "server exited"; }
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  cat "$2" >&2
  die "no answer from $1"
}

hlog=$(mktemp); LOGS+=("$hlog")
model_args=()
[ $# -ge 1 ] && model_args=(--model "$1")
"$HEARTH" serve "${model_args[@]}" --port 0 --parallel 1 --ctx 2048 --threads "$THREADS" >"$hlog" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 3000); do
  HURL=$(grep -o 'listens on http://[0-9.:]*' "$hlog" | head -n1 | sed 's/^listens on //' || true)
  [ -n "$HURL" ] && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$hlog" >&2; die "hearth exited"; }
  sleep 0.1
done
wait_for "$HURL/v1beta/models" "$hlog" "${PIDS[0]}"
# The GGUF hearth serves: the given one, or the cached built-in model.
if [ $# -ge 1 ]; then
  GGUF=$1
else
  GGUF=$(grep -o 'cached at [^ ]*\.gguf' "$hlog" | head -n1 | sed 's/^cached at //')
fi
[ -f "$GGUF" ] || die "cannot find the model file ($GGUF)"
log "hearth on $HURL serving $GGUF"

llog=$(mktemp); LOGS+=("$llog")
LPORT=${LLAMA_PORT:-18191}
"$BIN/llama-server" -m "$GGUF" --jinja --host 127.0.0.1 --port "$LPORT" -np 1 -c 2048 -t "$THREADS" \
  --no-webui >"$llog" 2>&1 &
PIDS+=($!)
LURL=http://127.0.0.1:$LPORT
wait_for "$LURL/health" "$llog" "${PIDS[1]}"
log "llama-server (llama.cpp@$LCPP_COMMIT) on $LURL"

HURL=$HURL LURL=$LURL N_PREDICT=$N_PREDICT python3 - <<'PY'
import json, os, sys, urllib.request

H, L, N = os.environ["HURL"], os.environ["LURL"], int(os.environ["N_PREDICT"])

def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)

PROMPTS = [
    "What is the capital of France?",
    "How does AI work?",
    "Write a haiku about the sea.",
    "List three primary colors.",
    "Translate 'good morning' into French.",
    "Explain what a CPU does in one paragraph.",
    "What is 12 times 12?",
    "Give me a short tip for learning to cook.",
    "I have 2 dogs in my house.",
    "Qu'est-ce que l'intelligence artificielle ?",
]
bad = 0
for p in PROMPTS:
    contents = [{"role": "user", "parts": [{"text": p}]}]
    hc = post(f"{H}/v1beta/models/gemini-2.5-flash:countTokens", {"contents": contents})["totalTokens"]
    rendered = post(f"{L}/apply-template", {"messages": [{"role": "user", "content": p}]})["prompt"]
    ltoks = post(f"{L}/tokenize", {"content": rendered, "add_special": True, "parse_special": True})["tokens"]
    g = post(f"{H}/v1beta/models/gemini-2.5-flash:generateContent", {
        "contents": contents,
        "generationConfig": {"temperature": 0, "maxOutputTokens": N, "responseLogprobs": True},
    })
    cand = g["candidates"][0]
    hids = [c["tokenId"] for c in cand.get("logprobsResult", {}).get("chosenCandidates", [])]
    c = post(f"{L}/completion", {"prompt": rendered, "n_predict": N, "temperature": 0, "top_k": 1,
                                 "cache_prompt": False, "return_tokens": True})
    lids = c.get("tokens", [])
    # llama-server includes the end-of-turn token it stopped on; hearth does not.
    if c.get("stop_type") == "eos" and len(lids) == len(hids) + 1:
        lids = lids[:-1]
    same = hids == lids and hc == len(ltoks)
    first = next((i for i, (a, b) in enumerate(zip(hids, lids)) if a != b), None)
    if not same:
        bad += 1
    print(f"{'same' if same else 'DIFF'}  prompt tokens {hc}/{len(ltoks)}  reply tokens {len(hids)}/{len(lids)}"
          f"{'' if first is None else f'  first difference at {first}'}  {p!r}")
    if not same:
        print(f"    hearth: {cand['content']['parts'][0].get('text', '')!r}")
        print(f"    llama : {c.get('content', '')!r}")
print(f"{len(PROMPTS) - bad}/{len(PROMPTS)} prompts identical (prompt tokens and greedy reply ids)")
sys.exit(1 if bad else 0)
PY
}

#!/usr/bin/env bash
# hearth vs llama.cpp on the same CPU, same GGUF files, same thread count: one command.
#
#   bash scripts/bench/compare.sh
#
# 1. In a work dir beside the repo (never inside it), downloads the llama-cpp-python 0.3.36
#    sdist with pip (vendored llama.cpp@0c1e57098), builds llama-bench, llama-server and
#    llama-quantize from it (CPU only), and builds hearth (release) in the repo.
# 2. Makes a Python venv there (pinned torch/transformers/...) and generates
#    Llama-3.2-1B-shaped random-weight GGUFs (scripts/bench/make_1b.py): f16, Q8_0, Q4_K_M.
# 3. For each model: llama-bench vs hearth's `speed` example (one stream, prefill + decode),
#    then llama-server vs `hearth serve` under `hearth bench` (streams at 1/8/32, mixed
#    long+short prompts, a 10-turn chat), one server at a time, loopback only, each
#    scenario on both servers back to back (alternating which goes first);
#    prints one table of hearth/llama.cpp ratios.
# Every step whose output exists is skipped; rerun after a failure and it resumes.
#
# Environment (all optional):
#   HEARTH_BENCH_DIR     work dir                         (default: <repo>/../hearth-bench)
#   HEARTH_BENCH_MODELS  dir with/for llama1b-*.gguf      (default: $HEARTH_BENCH_DIR/models)
#   HEARTH_BENCH_QUANTS  models to compare                (default: "q4_k_m q8_0 f16"; "" for none)
#   HEARTH_BENCH_MODEL_FILES  GGUF files to compare too, space-separated (e.g. the real
#                        SmolLM2-135M-Instruct that `hearth serve` fetches into ~/.cache/hearth/models);
#                        each is named by its file name in the table
#   HEARTH_BENCH_NO_CARGO=1  use the existing target/release binaries, do not run cargo
#   THREADS              CPU threads for both engines     (default: 2)
#   JOBS                 parallel compile jobs            (default: nproc)
#   PARALLEL             server slots / sequences         (default: 32)
#   CTX                  KV tokens per slot               (default: 1024; llama-server -c PARALLEL*CTX)
#   CONCURRENCY          streams levels                   (default: 1,8,32)
#   REQUESTS             requests per stream              (default: 2)
#   MAX_TOKENS           output tokens per request        (default: 32)
#   PROMPT_WORDS         words per short prompt           (default: 8; ~4 tokens per word with this
#                        model's tokenizer; mixed-scenario long prompts are 16x that)
#   MIXED_CONCURRENCY    (default: 8)   TURNS (default: 10)   CHAT_MAX_TOKENS (default: 16)
#   LB_REPS              repetitions of llama-bench and of hearth's speed runs (default: 5);
#                        single-stream figures are the best repetition on both sides
#   LLAMA_PORT / HEARTH_PORT  loopback ports              (default: 18181 / 18182)
#   STEP_TIMEOUT         seconds before any one step is killed (default: 1800)
#   PIP_TORCH_ARGS       extra pip args for torch, e.g. "--index-url https://download.pytorch.org/whl/cpu"
set -euo pipefail
# (the whole script is one { } block: bash parses it before running, so editing this file
#  while it runs does not break the run)
{

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${HEARTH_BENCH_DIR:-$REPO/../hearth-bench}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in
  "$REPO/"*) echo "compare.sh: HEARTH_BENCH_DIR ($WORK) must be outside the repo" >&2; exit 1 ;;
esac

VENV=$WORK/venv
MODELS=${HEARTH_BENCH_MODELS:-$WORK/models}
QUANTS=${HEARTH_BENCH_QUANTS-"q4_k_m q8_0 f16"}
MODEL_FILES=${HEARTH_BENCH_MODEL_FILES:-}
THREADS=${THREADS:-2}
JOBS=${JOBS:-$(nproc)}
PARALLEL=${PARALLEL:-32}
CTX=${CTX:-1024}
CONCURRENCY=${CONCURRENCY:-1,8,32}
REQUESTS=${REQUESTS:-2}
MAX_TOKENS=${MAX_TOKENS:-32}
PROMPT_WORDS=${PROMPT_WORDS:-8}
MIXED_CONCURRENCY=${MIXED_CONCURRENCY:-8}
TURNS=${TURNS:-10}
CHAT_MAX_TOKENS=${CHAT_MAX_TOKENS:-16}
LB_REPS=${LB_REPS:-5}
LLAMA_PORT=${LLAMA_PORT:-18181}
HEARTH_PORT=${HEARTH_PORT:-18182}
STEP_TIMEOUT=${STEP_TIMEOUT:-1800}
HEARTH=$REPO/target/release/hearth
SPEED=$REPO/target/release/examples/speed

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- servers stop by themselves
SERVER_PID=
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap 'stop_server' EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- 1. llama.cpp from the sdist
# shellcheck source=scripts/bench/llama_cpp.sh
source "$REPO/scripts/bench/llama_cpp.sh"
build_llama_cpp llama-bench llama-server llama-quantize

# ---------------------------------------------------------------- hearth (release)
if [ "${HEARTH_BENCH_NO_CARGO:-0}" != 1 ]; then
  log "building hearth (release)"
  (cd "$REPO" && cargo build --release -p hearth-cli && cargo build --release -p hearth-llama --example speed)
fi
[ -x "$HEARTH" ] && [ -x "$SPEED" ] || die "missing $HEARTH or $SPEED"

# ---------------------------------------------------------------- 2. venv + models
# Pins as testdata/models/make_models.py (torch is used on CPU only).
PINS_BASE="numpy==2.4.6"
PINS_GEN="torch==2.15.0 transformers==5.24.0 tokenizers==0.23.3 sentencepiece==0.2.3 safetensors==0.8.0 protobuf==7.36.2 jinja2==3.1.6"
[ -x "$VENV/bin/python" ] || { log "creating venv $VENV"; python3 -m venv "$VENV"; }
PY=$VENV/bin/python
pip_install() { # stamp file per pin set: install once
  local stamp="$VENV/.pins-$(echo "$*" | sha256sum | cut -c1-12)"
  [ -f "$stamp" ] && return 0
  "$PY" -m pip install -q --disable-pip-version-check "$@" && touch "$stamp"
}
pip_install $PINS_BASE

missing=()
for q in $QUANTS; do [ -f "$MODELS/llama1b-$q.gguf" ] || missing+=("$q"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "generating ${missing[*]} in $MODELS (torch + transformers venv, then llama-quantize)"
  # shellcheck disable=SC2086
  pip_install ${PIP_TORCH_ARGS:-} torch==2.15.0
  pip_install $PINS_BASE $PINS_GEN
  "$PY" "$REPO/scripts/bench/make_1b.py" --out "$MODELS" --llama-cpp-dir "$SRC" \
    --quantize "$BIN/llama-quantize" --quants "$(IFS=,; echo "${missing[*]}")"
fi

# ---------------------------------------------------------------- 3. measurements
RUN=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
log "results in $RUN"
cat /proc/loadavg > "$RUN/loadavg.start"

# Memory read bandwidth: THREADS numpy threads each reducing its own share of 1 GiB (best of 5).
"$PY" - "$THREADS" > "$RUN/membw.txt" <<'EOF'
import sys, threading, time
import numpy as np
t = max(1, int(sys.argv[1]))
per = (1 << 30) // t
arrs = [np.ones(per // 8) for _ in range(t)]
outs = [np.empty_like(a) for a in arrs]
def best(fn, passes):
    b = 0.0
    for _ in range(5):
        bar = threading.Barrier(t + 1)
        def work(i):
            bar.wait(); fn(i)
        ths = [threading.Thread(target=work, args=(i,)) for i in range(t)]
        for th in ths: th.start()
        bar.wait(); t0 = time.perf_counter()
        for th in ths: th.join()
        b = max(b, passes * per * t / (time.perf_counter() - t0) / 1e9)
    return b
read = max(best(lambda i: arrs[i].max(), 1), best(lambda i: arrs[i].sum(), 1))
copy = best(lambda i: np.copyto(outs[i], arrs[i]), 2)
print(f"read_gbs {read:.2f}")
print(f"copy_gbs {copy:.2f}")
EOF
log "memory bandwidth ($THREADS threads): $(tr '\n' ' ' < "$RUN/membw.txt")"

port_free() { ! curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null; }

# start_server NAME LOGFILE READY_URL CMD... : starts one server in the background, waits until ready
start_server() {
  local name=$1 logf=$2 url=$3; shift 3
  "$@" > "$logf" 2>&1 &
  SERVER_PID=$!
  local deadline=$((SECONDS + 600))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>/dev/null)" = 200 ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$logf" >&2; SERVER_PID=; die "$name exited during startup"; }
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$logf" >&2; die "$name not ready after 600 s"; }
    sleep 1
  done
  log "$name ready (pid $SERVER_PID)"
}

# Each scenario (and each streams level) runs against a freshly started server: hearth bench's
# prompts repeat across levels and scenarios (the same seeds), so a server kept running would
# answer later runs partly from its prefix cache.
start_llama_server() { # TAG
  start_server llama-server "$RUN/$q.llama-server.$1.log" "http://127.0.0.1:$LLAMA_PORT/health" \
    "$BIN/llama-server" -m "$M" -t "$THREADS" --host 127.0.0.1 --port "$LLAMA_PORT" \
    -np "$PARALLEL" -c $((PARALLEL * CTX))
}
start_hearth() { # TAG
  start_server hearth "$RUN/$q.hearth.$1.log" "http://127.0.0.1:$HEARTH_PORT/v1beta/models" \
    "$HEARTH" serve --model "$M" --threads "$THREADS" --host 127.0.0.1 --port "$HEARTH_PORT" \
    --parallel "$PARALLEL" --ctx "$CTX"
}

# run_unit LABEL API PORT MODEL_NAME UNIT: one hearth-bench scenario against a fresh server of
# one kind; appends to $RUN/$q.LABEL.bench.txt.
run_unit() {
  local label=$1 api=$2 port=$3 name=$4 unit=$5
  local out=$RUN/$q.$label.bench.txt tmp=$RUN/.bench.out
  local args=(--url "http://127.0.0.1:$port" --api "$api" --model "$name" --label "$label"
              --prompt-words "$PROMPT_WORDS")
  case $unit in
    streams=*) args+=(--scenario streams --concurrency "${unit#streams=}" --requests "$REQUESTS" --max-tokens "$MAX_TOKENS") ;;
    mixed) args+=(--scenario mixed --concurrency "$MIXED_CONCURRENCY" --requests "$REQUESTS" --max-tokens "$MAX_TOKENS") ;;
    chat) args+=(--scenario chat --turns "$TURNS" --max-tokens "$CHAT_MAX_TOKENS") ;;
    schema) args+=(--scenario schema --requests 3 --max-tokens 256) ;;
    quote) args+=(--scenario quote --requests 3 --max-tokens 160) ;;
  esac
  if [ "$label" = hearth ]; then start_hearth "$unit"; else start_llama_server "$unit"; fi
  log "$label: $unit"
  if ! timeout "$STEP_TIMEOUT" "$HEARTH" bench "${args[@]}" --server-pid "$SERVER_PID" > "$tmp" 2>&1; then
    echo "$label $unit FAILED: $(grep -m1 -i 'error' "$tmp" || tail -n1 "$tmp")" >> "$tmp"
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || echo "$label $unit FAILED: server died" >> "$tmp"
  tee -a "$out" < "$tmp" >&2
  stop_server
  rm -f "$tmp"
}

# Every scenario runs on both servers back to back, which goes first alternating from one
# scenario to the next: a machine that slows down or speeds up during the run (shared
# hosts do) weighs on both sides alike.
run_all_units() {
  local units=() lv unit k=0
  IFS=, read -ra lv <<< "$CONCURRENCY"
  for unit in "${lv[@]}"; do units+=("streams=$unit"); done
  units+=(mixed chat schema quote)
  : > "$RUN/$q.llama-server.bench.txt"
  : > "$RUN/$q.hearth.bench.txt"
  for unit in "${units[@]}"; do
    if [ $((k % 2)) = 0 ]; then
      run_unit llama-server openai "$LLAMA_PORT" llama1b "$unit"
      run_unit hearth gemini "$HEARTH_PORT" gemini-2.5-flash "$unit"
    else
      run_unit hearth gemini "$HEARTH_PORT" gemini-2.5-flash "$unit"
      run_unit llama-server openai "$LLAMA_PORT" llama1b "$unit"
    fi
    k=$((k + 1))
  done
}

port_free "$LLAMA_PORT" || die "port $LLAMA_PORT is in use (set LLAMA_PORT)"
port_free "$HEARTH_PORT" || die "port $HEARTH_PORT is in use (set HEARTH_PORT)"

# ENTRIES: "name=path" for each model compared.
ENTRIES=()
for q in $QUANTS; do ENTRIES+=("$q=$MODELS/llama1b-$q.gguf"); done
for m in $MODEL_FILES; do ENTRIES+=("$(basename "$m" .gguf)=$m"); done
[ ${#ENTRIES[@]} -gt 0 ] || die "no model to compare (HEARTH_BENCH_QUANTS and HEARTH_BENCH_MODEL_FILES are empty)"
for entry in "${ENTRIES[@]}"; do
  q=${entry%%=*}
  M=${entry#*=}
  [ -f "$M" ] || die "missing $M"
  log "=== $q: $M"

  # hearth first: llama-bench then prefills exactly as many tokens as hearth's runs did.
  # Two rounds, hearth then llama-bench each time; each side's best repetition counts.
  : > "$RUN/$q.speed.txt"
  for round in 1 2; do
    log "hearth speed example ($THREADS threads, 64 prompt words, 32 tokens, 1 + $LB_REPS runs), round $round"
    timeout "$STEP_TIMEOUT" "$SPEED" "$M" "$THREADS" 64 32 $((LB_REPS + 1)) >> "$RUN/$q.speed.txt" 2>> "$RUN/$q.speed.log" \
      || log "speed failed (see $RUN/$q.speed.log)"
    NP=$(sed -n 's/^run [1-9][0-9]*: prompt \([0-9]*\) tokens (\([0-9]*\) reused).*/\1 \2/p' "$RUN/$q.speed.txt" \
         | awk 'NR == 1 { print $1 - $2 }')
    NP=${NP:-64}
    log "llama-bench -t $THREADS -p $NP -n 32 -r $LB_REPS, round $round"
    timeout "$STEP_TIMEOUT" "$BIN/llama-bench" -m "$M" -t "$THREADS" -p "$NP" -n 32 -r "$LB_REPS" -o json \
      > "$RUN/$q.llama-bench.$round.json" 2>> "$RUN/$q.llama-bench.log" || log "llama-bench failed (see $RUN/$q.llama-bench.log)"
  done
  cat "$RUN/$q.speed.txt" >&2

  run_all_units
done
cat /proc/loadavg > "$RUN/loadavg.end"

# ---------------------------------------------------------------- 4. the table
"$PY" - "$RUN" "$MODELS" "$THREADS" "$CONCURRENCY" "$MIXED_CONCURRENCY" "$TURNS" "${ENTRIES[@]}" <<'EOF' | tee "$RUN/table.txt"
import json, os, re, statistics, sys
run, models, threads, conc, mixed_c, turns = sys.argv[1:7]
entries = [e.split("=", 1) for e in sys.argv[7:]]
quants = [q for q, _ in entries]
paths = dict(entries)
levels = [c for c in conc.split(",") if c]

def read(p):
    try:
        with open(os.path.join(run, p)) as f:
            return f.read()
    except OSError:
        return ""

bw = dict(l.split() for l in read("membw.txt").split("\n") if l.strip())
read_bw = float(bw.get("read_gbs", "nan"))

def llama_bench(q):
    rows = []
    for rnd in (1, 2):
        try:
            rows += json.loads(read(f"{q}.llama-bench.{rnd}.json"))
        except ValueError:
            pass
    # best repetition of both rounds, as for hearth's runs
    samples = lambda r: r.get("samples_ts") or [r["avg_ts"]]
    pp = [t for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0 for t in samples(r)]
    tg = [t for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0 for t in samples(r)]
    return (max(pp) if pp else None), (max(tg) if tg else None)

RUN_RE = re.compile(r"run (\d+): prompt (\d+) tokens(?: \(\d+ reused\))?, ttft ([\d.]+) ms \(([\d.]+) t/s prefill\+1\), "
                    r"decode (\d+) tokens at ([\d.]+) t/s")
def speed(q):
    runs = [m.groups() for m in RUN_RE.finditer(read(f"{q}.speed.txt"))]
    warm = [r for r in runs if int(r[0]) >= 1] or runs  # run 0 is the warm-up
    if not warm:
        return None, None
    return max(float(r[3]) for r in warm), max(float(r[5]) for r in warm)

LINE_RE = re.compile(r"^(\S+) (.+?): (\d+) requests, (\d+) tokens in ([\d.]+) s = ([\d.]+) tok/s; "
                     r"ttft p50 (\S+) ms p99 (\S+) ms", re.M)
def bench(q, label):
    txt = read(f"{q}.{label}.bench.txt")
    res = {"failed": [l for l in txt.splitlines() if " FAILED" in l]}
    for m in LINE_RE.finditer(txt):
        what = m.group(2)
        res[what] = dict(tps=float(m.group(6)), ttft50=float(m.group(7)), ttft99=float(m.group(8)),
                         tokens=int(m.group(4)))
    m = re.search(r"schema: decode ([\d.]+) tok/s free, ([\d.]+) tok/s with a JSON schema", txt)
    res["schema"] = (float(m.group(1)), float(m.group(2))) if m else None
    m = re.search(r"quote: decode ([\d.]+) tok/s", txt)
    res["quote"] = float(m.group(1)) if m else None
    chat = {int(t): float(v) for t, v in re.findall(r"chat turn (\d+): ttft ([\d.]+) ms", txt)}
    res["chat"] = chat
    res["chat_new"] = {int(t): int(n) for t, n in re.findall(r"chat turn (\d+): .*?, (\d+) new\)", txt)}
    m = re.findall(r"peak RSS (\d+) kB", txt)
    res["rss_mib"] = max(int(x) for x in m) / 1024 if m else None  # one server process per scenario
    return res

def f(x, nd=2):
    return "n/a" if x is None or x != x else f"{x:.{nd}f}"
def ratio(a, b, nd=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{nd}f}"

cols, failures = [], []
for q in quants:
    pp, tg = llama_bench(q)
    hpp, htg = speed(q)
    ls, hs = bench(q, "llama-server"), bench(q, "hearth")
    failures += [f"{q}: {l}" for l in ls["failed"] + hs["failed"]]
    try:
        size = os.path.getsize(paths[q])
    except OSError:
        size = None
    c = {}
    c["decode t/s hearth/llama-bench"] = f"{ratio(htg, tg)} ({f(htg, 1)}/{f(tg, 1)})"
    c["prefill t/s hearth/llama-bench"] = f"{ratio(hpp, pp)} ({f(hpp, 0)}/{f(pp, 0)})"
    for lv in levels:
        h, l = hs.get(f"streams={lv}"), ls.get(f"streams={lv}")
        c[f"aggregate tok/s, {lv} streams h/ls"] = (
            f"{ratio(h and h['tps'], l and l['tps'])} ({f(h and h['tps'], 1)}/{f(l and l['tps'], 1)})")
    for lv in levels:
        h, l = hs.get(f"streams={lv}"), ls.get(f"streams={lv}")
        for p in ("50", "99"):
            k = "ttft" + p
            c[f"TTFT p{p} ms, {lv} streams h/ls"] = (
                f"{ratio(h and h[k], l and l[k])} ({f(h and h[k], 0)}/{f(l and l[k], 0)})")
    key = f"mixed streams={max(2, int(mixed_c))} short"
    h, l = hs.get(key), ls.get(key)
    c[f"p99 TTFT ms, mixed x{mixed_c} short h/ls"] = (
        f"{ratio(h and h['ttft99'], l and l['ttft99'])} ({f(h and h['ttft99'], 0)}/{f(l and l['ttft99'], 0)})")
    for name, r in (("hearth", hs), ("llama-server", ls)):
        ch = r["chat"]
        last = max(ch) if ch else None
        short = "" if last is None or last == int(turns) else f", only {last} turns"
        c[f"chat TTFT turn{turns}/turn1 {name}"] = (
            f"{ratio(ch.get(last), ch.get(1))} ({f(ch.get(last), 0)}/{f(ch.get(1), 0)} ms{short})" if ch else "n/a")
    for name, r in (("hearth", hs), ("llama-server", ls)):
        nw = r["chat_new"]
        last = max(nw) if nw else None
        c[f"chat prompt tokens computed turn{turns}/turn1 {name}"] = (
            f"{nw.get(last)}/{nw.get(1)}" if nw else "n/a")
    hsch, lsch = hs.get("schema"), ls.get("schema")
    c["schema tok/s h/ls (json_schema)"] = (
        f"{ratio(hsch and hsch[1], lsch and lsch[1])} ({f(hsch and hsch[1], 1)}/{f(lsch and lsch[1], 1)})")
    c["schema/free tok/s hearth (llama-server)"] = (
        f"{ratio(hsch and hsch[1], hsch and hsch[0])} ({ratio(lsch and lsch[1], lsch and lsch[0])})")
    c["quote tok/s h/ls (1 stream)"] = f"{ratio(hs.get('quote'), ls.get('quote'))} ({f(hs.get('quote'), 1)}/{f(ls.get('quote'), 1)})"
    c["peak RSS MiB hearth/llama-server"] = f"{f(hs['rss_mib'], 0)}/{f(ls['rss_mib'], 0)}"
    frac = lambda tps: None if tps is None or size is None else size * tps / (read_bw * 1e9)
    c["decode BW fraction hearth (llama-bench)"] = f"{f(frac(htg))} ({f(frac(tg))})"
    cols.append(c)

rows = list(cols[0]) if cols else []
w0 = max([len(r) for r in rows] + [10]) + 2
w = max([len(v) for c in cols for v in c.values()] + [len(q) for q in quants] + [8]) + 2
la0, la1 = read("loadavg.start").split()[:3], read("loadavg.end").split()[:3]
print()
print(f"hearth vs llama.cpp@0c1e57098 (llama-cpp-python 0.3.36 sdist), THREADS={threads}, "
      f"{os.cpu_count()} CPUs; memory read bandwidth {f(read_bw, 1)} GB/s "
      f"(copy {bw.get('copy_gbs', 'n/a')} GB/s r+w), {threads} numpy threads")
print(f"load average at start {' '.join(la0)}, at end {' '.join(la1)}  (other work on the machine skews both engines)")
print("ratios are hearth/llama.cpp (> 1: hearth faster, except TTFT and RSS where < 1 is better); raw values in ()")
print("".ljust(w0) + "".join(q.ljust(w) for q in quants))
for r in rows:
    print(r.ljust(w0) + "".join(c[r].ljust(w) for c in cols))
for l in failures:
    print("FAILED:", l)
print(f"raw outputs: {run}")
EOF
exit
}

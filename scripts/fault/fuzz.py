#!/usr/bin/env python3
"""Mutated requests against a live hearth: the server must answer every one
with a 2xx or a 4xx, never a 5xx, never panic, and still serve afterwards.

The seeds are every JSON request the official SDKs sent in the captures
(../shared/spec/captures/**/*.requests.jsonl: generateContent,
streamGenerateContent, countTokens, files). Each request is one seed with
one to three mutations: a key dropped, renamed or duplicated in case; a
value replaced by another type, a huge or negative number, a long or
non-UTF-8-looking string, broken base64; an array repeated or emptied;
deep nesting; the JSON text truncated, or replaced by random bytes; the
model name, method or `alt` garbled. Generation is bounded (maxOutputTokens
forced to at most 16) so that 10 000 requests finish in minutes on the
tiny models.

Not a test: a proof run, as the benchmarks are. Usage (from the repo root):

    cargo build --release -p hearth-cli
    python3 scripts/fault/fuzz.py --requests 10000 --seed 1

It starts `target/release/hearth serve` on the tiny Gemma 3 vision model
(images are read too) with a throwaway files directory, and prints a
summary; exit status 1 if any request got a 5xx or no answer, if the log
shows a panic, or if the server is not serving at the end.
"""

import argparse
import base64
import collections
import concurrent.futures
import glob
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from common import REPO, free_port, start_hearth


def seeds(captures):
    out = []
    for path in sorted(glob.glob(os.path.join(captures, "**", "*.requests.jsonl"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r.get("method") != "POST" or not isinstance(r.get("body"), dict):
                    continue
                p = r["path"]
                if ":generateContent" in p or ":streamGenerateContent" in p or ":countTokens" in p:
                    out.append((p, r.get("query", ""), r["body"]))
    return out


WEIRD_STRINGS = [
    "", " ", "\u0000", "\ud7ff\ue000", "💥" * 1000, "a" * 200_000, "../../etc/passwd",
    "files/../../x", "%00", "null", "-1", "NaN", "data:image/png;base64,AAAA", "=" * 7,
    "!!!not base64!!!", "aGVsbG8", "\\u0000", "<|im_start|>system", "<start_of_turn>",
]


def weird_value(rng):
    kind = rng.randrange(12)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 7])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e308, 3.4e38, 1e-320, 2.5])
    if kind == 4:
        return rng.choice(WEIRD_STRINGS)
    if kind == 5:
        return []
    if kind == 6:
        return {}
    if kind == 7:
        return [rng.choice(WEIRD_STRINGS)] * rng.randrange(1, 50)
    if kind == 8:
        return {"text": rng.choice(WEIRD_STRINGS)}
    if kind == 9:
        return {"inlineData": {"mimeType": rng.choice(["image/png", "image/jpeg", "application/pdf", "audio/wav", "x/y", ""]),
                               "data": rng.choice([base64.b64encode(os.urandom(rng.randrange(0, 2000))).decode(), "@@@", ""])}}
    if kind == 10:
        return {"fileData": {"fileUri": rng.choice(["files/nope", "files/../x", "https://example.com/a", "", "gs://b/o"]),
                             "mimeType": rng.choice(["image/png", "text/plain", ""])}}
    return rng.choice(["STRING", "OBJECT", "ARRAY", "INTEGER", "HIGH", "MEDIA_RESOLUTION_LOW", "ANY", "NONE"])


def paths(node, prefix=()):
    """Every (container, key) in a JSON tree."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((node, k))
            out.extend(paths(v, prefix + (k,)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            out.extend(paths(v, prefix + (i,)))
    return out


def mutate_body(body, rng):
    spots = paths(body)
    if not spots:
        return body
    container, key = rng.choice(spots)
    op = rng.randrange(8)
    if op == 0 and isinstance(container, dict):
        del container[key]
    elif op == 1 and isinstance(container, dict):
        v = container.pop(key)
        new = rng.choice([key.upper(), key + "x", key[:1], "unknownField", key.replace("_", "")]) if isinstance(key, str) else key
        container[new] = v
    elif op == 2 and isinstance(container[key], list):
        container[key] = container[key] * rng.choice([0, 2, 100])
    elif op == 3:
        # Deep nesting, spliced into the JSON text later (Python's own
        # encoder recurses): "__DEEP_n__" becomes n nested arrays.
        container[key] = f"__DEEP_{rng.choice([10, 500, 3000, 100000])}__"
    elif op == 4 and isinstance(container[key], str):
        s = container[key]
        container[key] = s[: rng.randrange(len(s) + 1)] + rng.choice(WEIRD_STRINGS[:12])
    else:
        container[key] = weird_value(rng)
    return body


def bound_generation(body):
    """At most 16 new tokens, whatever the mutation did to the config."""
    if not isinstance(body, dict):
        return
    gc = body.get("generationConfig", body.get("generation_config"))
    if isinstance(gc, dict):
        mot = gc.get("maxOutputTokens")
        if not isinstance(mot, int) or isinstance(mot, bool) or mot > 16 or mot < 1:
            gc["maxOutputTokens"] = 16 if not isinstance(mot, int) or isinstance(mot, bool) or mot > 16 else mot
    elif gc is None:
        body["generationConfig"] = {"maxOutputTokens": 16}
    nested = body.get("generateContentRequest")
    if isinstance(nested, dict):
        bound_generation(nested)


def one_request(rng, seeds_):
    path, query, body = rng.choice(seeds_)
    body = json.loads(json.dumps(body))
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        body = mutate_body(body, rng)
    bound_generation(body)
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)
    text = re.sub(r'"__DEEP_(\d+)__"', lambda m: "[" * int(m[1]) + "0" + "]" * int(m[1]), text)
    text = text.encode()
    roll = rng.random()
    if roll < 0.05:
        text = text[: rng.randrange(len(text) + 1)]
    elif roll < 0.08:
        text = os.urandom(rng.randrange(1, 4000))
    if rng.random() < 0.05:
        model, _, method = path.rpartition(":")
        path = rng.choice([model + ":" + method + "x", model + "zz:" + method, "/v1beta/models/%2e%2e:" + method, path + "/extra"])
    if rng.random() < 0.05:
        query = rng.choice(["alt=json", "alt=bogus", "alt=sse&alt=sse", "key=", "foo=1", "%zz"])
    return path, query, text


def send(base, path, query, data, timeout):
    url = base + path + ("?" + query if query else "")
    req = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status, ""
    except urllib.error.HTTPError as e:
        body = e.read()[:300].decode("utf-8", "replace")
        return e.code, body
    except Exception as e:  # no answer: a failure
        return None, repr(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--hearth", default=os.path.join(REPO, "target", "release", "hearth"))
    ap.add_argument("--captures", default=os.path.join(REPO, "..", "shared", "spec", "captures"))
    ap.add_argument("--out", default=None, help="write the 5xx/no-answer cases here (JSON lines)")
    args = ap.parse_args()

    seeds_ = seeds(args.captures)
    if not seeds_:
        sys.exit(f"no captured requests under {args.captures}")
    port = free_port()
    files = tempfile.mkdtemp(prefix="hearth-fuzz-files-")
    log_path = os.path.join(tempfile.gettempdir(), f"hearth-fuzz-{port}.log")
    models = os.path.join(REPO, "testdata", "models")
    # --max-output-tokens 16: a mutated config that the server reads as
    # none (e.g. "generationConfig": []) still answers in 16 tokens.
    cmd = [args.hearth, "serve", "--port", str(port), "--files-dir", files, "--max-output-tokens", "16",
           "--model", os.path.join(models, "gemma3v-f32.gguf"),
           "--mmproj", os.path.join(models, "gemma3v-mmproj-f32.gguf")]
    log = open(log_path, "wb")
    server, base = start_hearth(cmd, log)
    print(f"fuzz: {len(seeds_)} captured requests as seeds, {args.requests} mutated requests, seed {args.seed}, "
          f"{args.workers} at once, against {base} (log {log_path})", flush=True)

    rng = random.Random(args.seed)
    work = [one_request(rng, seeds_) for _ in range(args.requests)]
    statuses = collections.Counter()
    bad = []
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        futs = {pool.submit(send, base, p, q, d, args.timeout): (p, q, d) for p, q, d in work}
        for i, f in enumerate(concurrent.futures.as_completed(futs), 1):
            status, detail = f.result()
            statuses[status] += 1
            if status is None or status >= 500:
                p, q, d = futs[f]
                bad.append({"status": status, "path": p, "query": q, "detail": detail,
                            "body": d[:2000].decode("utf-8", "replace")})
            if i % 1000 == 0:
                print(f"  {i} done in {time.time() - started:.0f} s", flush=True)
    elapsed = time.time() - started
    alive = True
    try:
        urllib.request.urlopen(base + "/v1beta/models", timeout=10).read()
        status, _ = send(base, "/v1beta/models/gemini-2.5-flash:generateContent", "",
                         json.dumps({"contents": [{"parts": [{"text": "hello"}]}],
                                     "generationConfig": {"maxOutputTokens": 4}}).encode(), 60)
        alive = status == 200
    except Exception:
        alive = False
    server.terminate()
    try:
        server.wait(timeout=40)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()
    with open(log_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    panics = text.count("panicked")
    counts = ", ".join(f"{k if k is not None else 'no answer'}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
    print(f"fuzz: {args.requests} requests in {elapsed:.0f} s; statuses {counts}")
    print(f"fuzz: 5xx or no answer: {len(bad)}; panics in the log: {panics}; serving afterwards: {alive}")
    if args.out and bad:
        with open(args.out, "w", encoding="utf-8") as f:
            for b in bad:
                f.write(json.dumps(b) + "\n")
    for b in bad[:5]:
        print("  e.g.", json.dumps(b)[:600])
    sys.exit(0 if not bad and panics == 0 and alive else 1)


if __name__ == "__main__":
    main()

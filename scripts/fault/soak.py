#!/usr/bin/env python3
"""Soak: 32 streams against one hearth for a long time; its resident memory
must stay flat. Not a test: a proof run, as the benchmarks are.

    cargo build --release -p hearth-cli
    python3 scripts/fault/soak.py --minutes 30

It starts `target/release/hearth serve` (the built-in SmolLM2-135M-Instruct
unless --model is given) with 32 sequences, then runs `hearth bench
--scenario streams --concurrency 32` rounds back to back (every prompt of a
round distinct, so the prefix cache keeps turning over), sampling the
server's VmRSS every 10 s. It prints the RSS at the start (after the first
round: the KV cache and buffers are allocated by then), the maximum, the end,
and the growth per hour fitted over the second half of the run; exit status
1 if the server died, a round failed, or RSS grew by more than --max-growth-mib
between the first round and the end.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from common import REPO, free_port, start_hearth


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--model", default=None)
    ap.add_argument("--hearth", default=os.path.join(REPO, "target", "release", "hearth"))
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--max-growth-mib", type=float, default=64)
    args = ap.parse_args()

    port = free_port()
    files = tempfile.mkdtemp(prefix="hearth-soak-files-")
    log_path = os.path.join(tempfile.gettempdir(), f"hearth-soak-{port}.log")
    cmd = [args.hearth, "serve", "--port", str(port), "--files-dir", files,
           "--parallel", str(args.streams), "--ctx", "1024"]
    if args.model:
        cmd += ["--model", args.model]
    log = open(log_path, "wb")
    server, base = start_hearth(cmd, log)

    samples = []  # (seconds since start, kib)
    stop = threading.Event()
    t0 = time.time()

    def sample():
        while not stop.is_set() and server.poll() is None:
            samples.append((time.time() - t0, rss_kib(server.pid)))
            stop.wait(10)

    threading.Thread(target=sample, daemon=True).start()
    rounds = failed = tokens = 0
    first_round_rss = None
    deadline = t0 + args.minutes * 60
    while time.time() < deadline and server.poll() is None:
        out = subprocess.run(
            [args.hearth, "bench", "--url", base, "--scenario", "streams", "--concurrency", str(args.streams),
             "--requests", "2", "--max-tokens", "32", "--prompt-words", "8", "--label", f"round{rounds}"],
            capture_output=True, text=True)
        rounds += 1
        m = re.search(r"(\d+) tokens in", out.stdout)
        if out.returncode != 0 or not m:
            failed += 1
            print(f"round {rounds} failed: {out.stdout[-300:]} {out.stderr[-300:]}", flush=True)
        else:
            tokens += int(m[1])
        if first_round_rss is None:
            first_round_rss = rss_kib(server.pid)
        if rounds % 20 == 0:
            print(f"  {rounds} rounds, {(time.time() - t0) / 60:.1f} min, RSS {rss_kib(server.pid) / 1024:.1f} MiB", flush=True)
    stop.set()
    alive = server.poll() is None
    end_rss = rss_kib(server.pid) if alive else 0
    server.terminate()
    try:
        server.wait(timeout=40)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()
    elapsed = time.time() - t0
    half = [s for s in samples if s[0] >= elapsed / 2]
    slope = 0.0
    if len(half) >= 2:
        n = len(half)
        mx = sum(t for t, _ in half) / n
        my = sum(k for _, k in half) / n
        var = sum((t - mx) ** 2 for t, _ in half)
        if var > 0:
            slope = sum((t - mx) * (k - my) for t, k in half) / var  # KiB per second
    peak = max((k for _, k in samples), default=0)
    growth = (end_rss - (first_round_rss or 0)) / 1024
    print(f"soak: {elapsed / 60:.1f} min, {rounds} rounds of {args.streams} streams x 2 requests, "
          f"{tokens} tokens, {failed} failed rounds, server alive at the end: {alive}")
    print(f"soak: RSS after the first round {(first_round_rss or 0) / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
          f"end {end_rss / 1024:.1f} MiB (growth {growth:+.1f} MiB); second-half trend {slope * 3600 / 1024:+.1f} MiB/h")
    ok = alive and failed == 0 and growth <= args.max_growth_mib
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

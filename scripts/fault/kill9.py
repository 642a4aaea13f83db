#!/usr/bin/env python3
"""kill -9 during streaming and during uploads, then restart: every file
whose upload finished is intact, no half-uploaded file is listed as a file,
and the server serves again. Not a test: a proof run.

    cargo build --release -p hearth-cli
    python3 scripts/fault/kill9.py --rounds 5

Each round, on one files directory kept across rounds:
  1. uploads 4 files whole (resumable protocol, as the SDKs do: start, then
     one `upload, finalize`), of random sizes up to 3 MiB, and remembers
     their sha256;
  2. starts two uploads that will not finish: one that sent a first chunk
     (`upload`, no finalize) and stopped; one whose bytes are still being
     sent, slowly, on a raw socket;
  3. starts a streamed generation and reads its first chunks;
  4. kill -9 the server while all of that is in flight;
  5. restarts it on the same directory and checks: every finished file is
     listed ACTIVE with its size and Google's sha256Hash (base64 of the hex
     digest) unchanged, the unfinished uploads are not listed, a new
     upload and a generation both succeed.
Exit status 1 at the first round that fails.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from common import REPO, free_port, start_hearth


def req(method, url, data=None, headers=None, timeout=60):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(r, timeout=timeout) as resp:
        return resp.status, dict(resp.headers), resp.read()


def start_upload(base, size, name):
    meta = json.dumps({"file": {"displayName": name}}).encode()
    _, h, _ = req("POST", base + "/upload/v1beta/files", meta, {
        "content-type": "application/json",
        "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start",
        "x-goog-upload-header-content-length": str(size),
        "x-goog-upload-header-content-type": "application/octet-stream",
    })
    return {k.lower(): v for k, v in h.items()}["x-goog-upload-url"]


def upload_whole(base, data, name):
    url = start_upload(base, len(data), name)
    _, _, body = req("POST", url, data, {"x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0",
                                          "content-type": "application/octet-stream"})
    return json.loads(body)["file"]


def slow_send(url, data, stop):
    """Sends the upload's bytes on a raw socket, a few KiB at a time, until
    `stop` is set (the server is killed meanwhile)."""
    u = urllib.parse.urlsplit(url)
    try:
        s = socket.create_connection((u.hostname, u.port), timeout=30)
        path = u.path + ("?" + u.query if u.query else "")
        head = (f"POST {path} HTTP/1.1\r\nhost: {u.hostname}\r\nx-goog-upload-command: upload, finalize\r\n"
                f"x-goog-upload-offset: 0\r\ncontent-type: application/octet-stream\r\n"
                f"content-length: {len(data)}\r\n\r\n")
        s.sendall(head.encode())
        for i in range(0, len(data), 4096):
            if stop.is_set():
                break
            s.sendall(data[i:i + 4096])
            time.sleep(0.01)
        s.close()
    except OSError:
        pass


def start_server(hearth, port, files, log):
    return start_hearth([hearth, "serve", "--port", str(port), "--files-dir", files,
                         "--model", os.path.join(REPO, "testdata", "models", "llama3-f16.gguf")], log)


def list_files(base):
    out, token = [], None
    while True:
        q = "?pageSize=100" + (f"&pageToken={token}" if token else "")
        _, _, body = req("GET", base + "/v1beta/files" + q)
        page = json.loads(body)
        out.extend(page.get("files", []))
        token = page.get("nextPageToken")
        if not token:
            return out


def google_sha(data):
    return base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hearth", default=os.path.join(REPO, "target", "release", "hearth"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    files = tempfile.mkdtemp(prefix="hearth-kill9-files-")
    log = open(os.path.join(tempfile.gettempdir(), "hearth-kill9.log"), "ab")
    finished = {}  # name -> (size, google sha)
    for rnd in range(1, args.rounds + 1):
        port = free_port()
        server, base = start_server(args.hearth, port, files, log)
        # 1. finished uploads
        for k in range(4):
            data = os.urandom(rng.randrange(1, 3 << 20))
            f = upload_whole(base, data, f"r{rnd}-whole-{k}")
            finished[f["name"]] = (len(data), google_sha(data))
        # 2. unfinished uploads: a first chunk only, and one still sending
        part = os.urandom(4 << 20)
        url = start_upload(base, len(part), f"r{rnd}-chunk-only")
        req("POST", url, part[: 1 << 20], {"x-goog-upload-command": "upload", "x-goog-upload-offset": "0",
                                            "content-type": "application/octet-stream"})
        stop = threading.Event()
        slow = os.urandom(8 << 20)
        slow_url = start_upload(base, len(slow), f"r{rnd}-sending")
        sender = threading.Thread(target=slow_send, args=(slow_url, slow, stop), daemon=True)
        sender.start()
        # 3. a stream in flight
        body = json.dumps({"contents": [{"parts": [{"text": "go on and on"}]}],
                           "generationConfig": {"maxOutputTokens": 2000}}).encode()
        r = urllib.request.Request(base + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                                   data=body, method="POST", headers={"content-type": "application/json"})
        stream = urllib.request.urlopen(r, timeout=30)
        stream.readline()
        time.sleep(0.3)
        # 4. kill -9 with all of that in flight
        server.kill()
        server.wait()
        stop.set()
        sender.join(timeout=5)
        try:
            stream.read()
        except Exception:
            pass
        # 5. restart on the same directory
        server, base = start_server(args.hearth, free_port(), files, log)
        listed = {f["name"]: f for f in list_files(base)}
        problems = []
        for name, (size, sha) in finished.items():
            f = listed.get(name)
            if f is None:
                problems.append(f"{name} is gone")
            elif f.get("state") != "ACTIVE" or int(f.get("sizeBytes", -1)) != size or f.get("sha256Hash") != sha:
                problems.append(f"{name} changed: {json.dumps(f)[:300]}")
        unfinished = [n for n, f in listed.items() if f.get("displayName", "").startswith(f"r{rnd}-") and
                      ("chunk-only" in f["displayName"] or "sending" in f["displayName"])]
        if unfinished:
            problems.append(f"half-uploaded files are listed: {unfinished}")
        extra = set(listed) - set(finished)
        if extra:
            problems.append(f"files nobody finished: {sorted(extra)}")
        data = os.urandom(1000)
        f = upload_whole(base, data, f"r{rnd}-after")
        finished[f["name"]] = (len(data), google_sha(data))
        status, _, _ = req("POST", base + "/v1beta/models/gemini-2.5-flash:generateContent",
                           json.dumps({"contents": [{"parts": [{"text": "hi"}]}],
                                       "generationConfig": {"maxOutputTokens": 4}}).encode(),
                           {"content-type": "application/json"})
        if status != 200:
            problems.append(f"generation after the restart: {status}")
        server.terminate()
        server.wait(timeout=40)
        if problems:
            print(f"kill9: round {rnd} FAILED:\n  " + "\n  ".join(problems))
            sys.exit(1)
        print(f"kill9: round {rnd}: killed during 2 unfinished uploads and a stream; after the restart "
              f"{len(finished) - 1} finished files intact (size and sha256), no half file listed, "
              f"upload and generation served", flush=True)
    print(f"kill9: {args.rounds} rounds passed ({files})")


if __name__ == "__main__":
    main()

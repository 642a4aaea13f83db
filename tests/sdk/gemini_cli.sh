#!/usr/bin/env bash
# Google's Gemini CLI, unchanged, against hearth serving its built-in
# SmolLM2-135M-Instruct with its whole 8192-token context (the CLI's own
# system prompt and 8 tool declarations are about 7k tokens):
#
#   bash tests/sdk/gemini_cli.sh ["prompt"]
#
# Installs @google/gemini-cli (GEMINI_CLI_VERSION, default 0.61.0, ~100 MB)
# into a work dir outside the repo (GEMINI_CLI_DIR, default
# ../hearth-bench/gemini-cli), gives it a fresh HOME whose settings turn off
# telemetry, usage statistics, auto-update and IDE integration (the CLI
# otherwise looks up play.googleapis.com) and select API-key auth (without
# it the CLI refuses a custom base URL in non-interactive mode), then runs
# `gemini --model gemini-2.5-flash -p PROMPT` and exits with its status.
# Not part of scripts/test.sh: the CLI samples at temperature 1, and a 135M
# model's answer is not something a test can judge. The default model route
# (gemini-3.1-pro-preview) sends a larger prompt (~8.5k tokens) than this
# model's context.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${HEARTH_BIN:-$ROOT/target/debug/hearth}"
WORK="${GEMINI_CLI_DIR:-$ROOT/../hearth-bench/gemini-cli}"
VERSION="${GEMINI_CLI_VERSION:-0.61.0}"
PROMPT="${1:-What is 2+2?}"
[ -x "$BIN" ] || { echo "gemini_cli: $BIN not built (cargo build -p hearth-cli)" >&2; exit 2; }
mkdir -p "$WORK"
if [ ! -x "$WORK/node_modules/.bin/gemini" ]; then
  (cd "$WORK" && npm install --no-audit --no-fund --loglevel=error "@google/gemini-cli@$VERSION")
fi

LOG="$(mktemp)"
HOME_DIR="$(mktemp -d)"
"$BIN" serve --port 0 --parallel 1 --ctx 8192 --api-key k >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$LOG" "$HOME_DIR"' EXIT
URL=""
for _ in $(seq 1 3000); do
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  URL="$(grep -o 'listens on http://[0-9.:]*' "$LOG" | head -n1 | sed 's/^listens on //' || true)"
  [ -n "$URL" ] && break
  sleep 0.1
done
mkdir -p "$HOME_DIR/.gemini" "$HOME_DIR/work"
cat >"$HOME_DIR/.gemini/settings.json" <<'JSON'
{
  "security": { "auth": { "selectedType": "gemini-api-key" } },
  "privacy": { "usageStatisticsEnabled": false },
  "telemetry": { "enabled": false },
  "general": { "enableAutoUpdate": false, "enableAutoUpdateNotification": false },
  "ide": { "enabled": false }
}
JSON
cd "$HOME_DIR/work"
echo "gemini_cli: @google/gemini-cli $VERSION against hearth on $URL" >&2
status=0
HOME="$HOME_DIR" GEMINI_CLI_TRUST_WORKSPACE=true GOOGLE_GEMINI_BASE_URL="$URL" GEMINI_API_KEY=k \
  "$WORK/node_modules/.bin/gemini" --model gemini-2.5-flash -p "$PROMPT" || status=$?
echo "gemini_cli: exit status $status" >&2
[ "$status" -eq 0 ] || { echo "--- hearth's log" >&2; cat "$LOG" >&2; }
exit "$status"

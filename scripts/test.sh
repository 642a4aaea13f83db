#!/usr/bin/env bash
# The whole test suite. Installs what it needs, then runs every test.
# Usage (from the repository root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --sdk
# A one-off build (CI, a fresh clone) gains nothing from incremental
# artifacts, which would only add gigabytes on disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
# Nine tests read ../shared (beside CI's checkout, not beside a lone clone):
# the real chat templates (templates.rs 2, shaping.rs 1, native_tools.rs 3)
# and the SDK captures (captures.rs, files.rs, wire.rs 1 each). Without it
# they pass having checked nothing, each printing a "skipped:" line.
if [ ! -d ../shared/spec/captures ] || [ ! -d ../shared/fixtures/chat-templates ]; then
  echo "skipped: 9 tests that read ../shared (the real chat templates and the SDK captures): it is not beside this checkout"
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
cargo clippy --workspace --all-targets --features hearth-engine/testing --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --features hearth-engine/testing --locked 2>&1 | tee "$log"

# The guide's examples through the official JS and Python SDKs against a live
# hearth (target/debug/hearth, built by the cargo test above) on a tiny model.
bash tests/sdk/run.sh 2>&1 | tee -a "$log"

# One closing line for the whole suite: cargo, node --test and pytest counts.
awk '
  /^test result:/ { p += $4; f += $6 }
  /^(#|ℹ) pass / { p += $3 } /^(#|ℹ) fail / { f += $3 }
  /^=+ .*(passed|failed).* in [0-9.]+s/ {
    for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) }
  }
  END { printf "hearth: %d passed, %d failed\n", p, f }' "$log"

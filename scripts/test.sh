#!/usr/bin/env bash
# The whole test suite. Installs what it needs, then runs every test.
# Usage (from the repository root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --sdk
# A one-off build (CI, a fresh clone) gains nothing from incremental
# artifacts, which would only add gigabytes on disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
if [ ! -d ../shared/spec/captures ]; then
  echo "warning: ../shared (the SDK captures) is not beside this checkout; capture tests will fail" >&2
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

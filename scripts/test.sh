#!/usr/bin/env bash
# The whole test suite. Installs what it needs, then runs every test.
# Usage (from the repository root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
if [ ! -d ../shared/spec/captures ]; then
  echo "warning: ../shared (the SDK captures) is not beside this checkout; capture tests will fail" >&2
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all --check
cargo clippy --workspace --all-targets --features hearth-engine/testing --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --features hearth-engine/testing --locked 2>&1 | tee "$log"
# One closing line for the whole suite (cargo's last line is a doc-test summary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "hearth: %d passed, %d failed\n", p, f }' "$log"

#!/usr/bin/env bash
# Starts the hearth server. Installs build dependencies, builds (release),
# then runs `hearth serve` with the arguments given, e.g.:
#   bash scripts/serve.sh --model path/to/model.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --locked -p hearth-cli
exec target/release/hearth serve "$@"

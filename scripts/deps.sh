#!/usr/bin/env bash
# Installs what building hearth needs on a fresh Debian/Ubuntu machine:
# a Rust toolchain check, and cmake, a C++ compiler and libclang for
# llama.cpp (built from source by the llama-cpp-sys-2 crate).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust first (https://rustup.rs)" >&2
  exit 1
fi

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
# ccache makes llama.cpp's C++ rebuilds (clippy, test, release) seconds instead of minutes.
command -v ccache >/dev/null 2>&1 || missing+=(ccache)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  missing+=(libclang-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing build dependencies: ${missing[*]}" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "please install: ${missing[*]}" >&2
    exit 1
  fi
fi

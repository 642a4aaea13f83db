#!/usr/bin/env bash
# Installs what building and testing hearth needs on a fresh Debian/Ubuntu
# machine, checking for exactly what each step loads:
#   cargo              the Rust toolchain (not installed here: https://rustup.rs)
#   cmake, c++         llama.cpp is built from source by the llama-cpp-sys-2 crate
#   ccache             llama.cpp's C++ rebuilds (clippy, test, release) in seconds
#   libclang.so        bindgen (llama-cpp-sys-2's build script) dlopens libclang
#                      itself: libclang-cpp.so is another library and does not do
#   curl               scripts/test.sh and tests/sdk/run.sh probe the server
#   ffmpeg, ffprobe    video parts are read by these programs (hearth-server/src/video.rs)
#   node >= 20, npm    the @google/genai SDK suite           (with --sdk)
#   python3 venv+pip   the google-genai SDK suite            (with --sdk)
# Usage: bash scripts/deps.sh [--sdk]
# Prints what it installed; exits 1 with the list when it cannot install.
set -euo pipefail

sdk=false
[ "${1:-}" = --sdk ] && sdk=true

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo not found: install Rust first (https://rustup.rs)" >&2
  exit 1
fi

# The libclang that clang-sys (bindgen) loads: libclang.so, libclang.so.N or
# libclang-N.so[.M] in LIBCLANG_PATH or the directories it searches; never
# libclang-cpp.so (the C++ API library, which clang-sys skips).
have_libclang() {
  local dirs=()
  [ -n "${LIBCLANG_PATH:-}" ] && dirs+=("$LIBCLANG_PATH")
  if command -v llvm-config >/dev/null 2>&1; then dirs+=("$(llvm-config --libdir 2>/dev/null || true)"); fi
  dirs+=(/usr/lib/llvm-*/lib /usr/lib/*-linux-gnu /usr/lib64 /usr/lib /usr/local/lib)
  local d f
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/libclang.so "$d"/libclang.so.* "$d"/libclang-[0-9]*.so "$d"/libclang-[0-9]*.so.*; do
      [ -e "$f" ] && return 0
    done
  done
  return 1
}

node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge 20 ]
}

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v ccache >/dev/null 2>&1 || missing+=(ccache)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
have_libclang || missing+=(libclang-dev)
command -v curl >/dev/null 2>&1 || missing+=(curl)
{ command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; } || missing+=(ffmpeg)
if $sdk; then
  node_ok || missing+=(nodejs npm)
  if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv python3-pip)
  elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv python3-pip)
  fi
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "deps: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: no apt-get on this machine; install by hand: ${missing[*]}" >&2
  exit 1
fi
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Check again: a package that installed but does not provide what the build
# loads must fail here, not deep inside a build script.
have_libclang || { echo "deps: libclang-dev installed but no libclang.so found" >&2; exit 1; }
for c in cmake ccache c++ curl ffmpeg ffprobe; do
  command -v "$c" >/dev/null 2>&1 || { echo "deps: $c still missing after installing" >&2; exit 1; }
done
if $sdk; then
  node_ok || { echo "deps: node >= 20 with npm is needed for the SDK suite (found: $(node --version 2>/dev/null || echo none))" >&2; exit 1; }
  python3 -c 'import venv, ensurepip' || { echo "deps: python3 venv/ensurepip still missing" >&2; exit 1; }
fi
echo "deps: installed ${missing[*]}" >&2

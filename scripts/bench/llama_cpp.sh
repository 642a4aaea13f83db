# llama.cpp's own programs, for measuring hearth against them: sourced by
# compare.sh and greedy_vs_llama.sh. Needs WORK (a directory outside the
# repo), log and die. Downloads the llama-cpp-python 0.3.36 sdist with pip
# (vendored llama.cpp@0c1e57098), checks its sha256, and builds the targets
# asked for (CPU only) into $BIN; nothing of llama.cpp enters the repository.
LCPP_PY_VERSION=0.3.36
LCPP_PY_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LCPP_COMMIT=0c1e57098
SRC=$WORK/llama_cpp_python-$LCPP_PY_VERSION/vendor/llama.cpp
BUILD=$WORK/build
BIN=$BUILD/bin
JOBS=${JOBS:-$(nproc)}

# build_llama_cpp TARGET...: builds the targets not built yet.
build_llama_cpp() {
  local sdist=$WORK/llama_cpp_python-$LCPP_PY_VERSION.tar.gz
  if [ ! -f "$sdist" ]; then
    log "downloading llama-cpp-python==$LCPP_PY_VERSION sdist with pip"
    python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LCPP_PY_VERSION" -d "$WORK"
  fi
  echo "$LCPP_PY_SHA256  $sdist" | sha256sum -c --quiet - || die "$sdist: unexpected sha256"
  if [ ! -f "$SRC/CMakeLists.txt" ]; then
    log "extracting $sdist"
    tar -xzf "$sdist" -C "$WORK"
  fi
  grep -q "llama.cpp@$LCPP_COMMIT" "$WORK/llama_cpp_python-$LCPP_PY_VERSION/CHANGELOG.md" \
    || die "the sdist's CHANGELOG does not name llama.cpp@$LCPP_COMMIT"
  local targets=() t
  for t in "$@"; do [ -x "$BIN/$t" ] || targets+=("$t"); done
  [ ${#targets[@]} -gt 0 ] || return 0
  log "building ${targets[*]} (llama.cpp@$LCPP_COMMIT, CPU only, -j$JOBS)"
  local launcher=()
  command -v ccache >/dev/null 2>&1 \
    && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF "${launcher[@]}" \
    > "$WORK/cmake-configure.log" 2>&1 \
    || { tail -n 40 "$WORK/cmake-configure.log" >&2; die "cmake configure failed (log: $WORK/cmake-configure.log)"; }
  cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}" > "$WORK/cmake-build.log" 2>&1 \
    || { tail -n 40 "$WORK/cmake-build.log" >&2; die "llama.cpp build failed (log: $WORK/cmake-build.log)"; }
}

# Shared helpers for the scripts in this folder. Sourced, not run.

# Keep build output outside the clone so fresh clones (and CI) reuse one cache.
: "${CARGO_TARGET_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/tasker/target}"
export CARGO_TARGET_DIR

phase_start() { PHASE_NAME="$1"; PHASE_T0=$(date +%s); echo "==> $1" >&2; }
phase_end() { echo "<== $PHASE_NAME: $(( $(date +%s) - PHASE_T0 ))s" >&2; }

# Rust is the one prerequisite we cannot install for you.
require_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust from https://rustup.rs and retry" >&2
    exit 2
  fi
}

# --- Language packages ------------------------------------------------------------
# Building and installing the three binding packages, shared by scripts/test-python,
# scripts/test-ruby, scripts/test-typescript, scripts/conformance and scripts/demo.
# Each build_* function leaves the package in $TASKER_CACHE_DIR (default
# ~/.cache/tasker) and sets a variable naming it, so a later script can install
# the package a test phase already built instead of building it again
# (find_built_packages).

: "${TASKER_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/tasker}"
export TASKER_CACHE_DIR
TASKER_PYTHON_DIST="$TASKER_CACHE_DIR/python-dist"
TASKER_RUBY_DIST="$TASKER_CACHE_DIR/dist"
TASKER_TS_DIST="$TASKER_CACHE_DIR/typescript-dist"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs Debian packages with apt-get (names as arguments).
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { echo "error: need $*, and there is no apt-get here" >&2; exit 2; }
  echo "installing $* with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Python: the interpreter ($TASKER_PYTHON, default python3), able to make virtualenvs
# (Debian ships venv without ensurepip: package python3-venv). Sets PYTHON.
ensure_python() {
  PYTHON="${TASKER_PYTHON:-python3}"
  command -v "$PYTHON" >/dev/null 2>&1 || { echo "error: $PYTHON not found (set TASKER_PYTHON)" >&2; exit 2; }
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
}

# Builds the abi3 wheel with maturin (a build virtualenv cached in $TASKER_CACHE_DIR)
# into $TASKER_PYTHON_DIST, replacing the previous one. Sets PY_WHEEL.
build_python_wheel() {
  ensure_python
  local build_venv="$TASKER_CACHE_DIR/python-build-venv"
  mkdir -p "$TASKER_CACHE_DIR"
  if [ ! -x "$build_venv/bin/maturin" ]; then
    "$PYTHON" -m venv "$build_venv"
    "$build_venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.9,<2"
  fi
  local out
  out=$(mktemp -d "${TMPDIR:-/tmp}/tasker-wheel.XXXXXX")
  "$build_venv/bin/maturin" build --release --quiet -m bindings-python/Cargo.toml -o "$out" \
    --interpreter "$build_venv/bin/python" >&2
  local wheel
  wheel=$(ls "$out"/*.whl)
  case "$(basename "$wheel")" in
    *-abi3-*) ;;
    *) echo "error: the wheel is not an abi3 wheel" >&2; rm -rf "$out"; exit 1 ;;
  esac
  mkdir -p "$TASKER_PYTHON_DIST"
  rm -f "$TASKER_PYTHON_DIST"/*.whl
  mv "$wheel" "$TASKER_PYTHON_DIST/"
  rm -rf "$out"
  PY_WHEEL="$TASKER_PYTHON_DIST/$(basename "$wheel")"
  echo "built $(basename "$PY_WHEEL")" >&2
}

# Makes a virtualenv DIR with the wheel and any extra pip requirements installed.
install_python_wheel() {
  local dir="$1" wheel="$2"
  shift 2
  ensure_python
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" "$@"
}

# Ruby, its headers and libclang (rb-sys runs bindgen), from apt-get when missing.
ensure_ruby() {
  have_headers() { ruby -rrbconfig -e 'exit File.exist?(File.join(RbConfig::CONFIG["rubyhdrdir"], "ruby.h"))' 2>/dev/null; }
  have_libclang() { ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; }
  if ! command -v ruby >/dev/null 2>&1 || ! command -v gem >/dev/null 2>&1 || ! have_headers || ! have_libclang; then
    apt_install ruby ruby-dev libclang-dev
  fi
}

# Builds the precompiled platform gem (cargo release build of tasker-ruby, staged with
# lib/ and the gemspec) into $TASKER_RUBY_DIST. Sets RUBY_GEM.
build_ruby_gem() {
  ensure_ruby
  local minor
  minor=$(ruby -e 'print RUBY_VERSION[/\A\d+\.\d+/]')
  cargo build --release -p tasker-ruby >&2
  local so="$CARGO_TARGET_DIR/release/libtasker_native.so"
  [ -f "$so" ] || { echo "error: $so was not built" >&2; exit 1; }
  local stage
  stage=$(mktemp -d "${TMPDIR:-/tmp}/tasker-gem.XXXXXX")
  mkdir -p "$stage/lib/tasker/$minor" "$TASKER_RUBY_DIST"
  cp -R bindings-ruby/lib/. "$stage/lib/"
  cp bindings-ruby/tasker-core.gemspec bindings-ruby/README.md "$stage/"
  cp "$so" "$stage/lib/tasker/$minor/tasker_native.so"
  # The release profile keeps line tables for Rust backtraces; the gem does not need them.
  if command -v strip >/dev/null 2>&1; then strip --strip-unneeded "$stage/lib/tasker/$minor/tasker_native.so"; fi
  (cd "$stage" && gem build --quiet tasker-core.gemspec >&2)
  local built
  built=$(ls "$stage"/tasker-core-*.gem)
  rm -f "$TASKER_RUBY_DIST"/tasker-core-*.gem
  cp "$built" "$TASKER_RUBY_DIST/"
  rm -rf "$stage"
  RUBY_GEM="$TASKER_RUBY_DIST/$(basename "$built")"
  echo "built $RUBY_GEM ($(du -h "$RUBY_GEM" | cut -f1)) for Ruby $minor" >&2
}

# Installs the gem into a fresh GEM_HOME (DIR) and exports GEM_HOME and GEM_PATH so
# that only it and the gems Ruby ships (minitest) are found.
install_ruby_gem() {
  local dir="$1" gem_file="$2"
  ensure_ruby
  use_ruby_gem_home "$dir"
  gem install --local --no-document "$gem_file" >&2
}

# Exports GEM_HOME=DIR and a GEM_PATH of DIR plus the gems Ruby ships.
use_ruby_gem_home() {
  local shipped
  shipped=$(env -u GEM_HOME -u GEM_PATH ruby -e 'print Gem::Specification.find_by_name("minitest").base_dir')
  export GEM_HOME="$1"
  export GEM_PATH="$GEM_HOME:$shipped"
}

# Node.js 20 or later.
ensure_node() {
  for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found (install Node.js 20 or later)" >&2; exit 2; }
  done
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
    || { echo "error: Node.js 20 or later is needed (found $(node --version))" >&2; exit 2; }
}

# Builds the npm package: dev dependencies (npm ci), the addon (cargo release), tsc and
# the ESM entry, then `npm pack` into $TASKER_TS_DIST, checking that the tarball holds
# the addon and declares no runtime dependencies. Sets TS_TGZ.
build_typescript_tarball() {
  ensure_node
  local pkg="$PWD/bindings-typescript"
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error) >&2
  bash "$pkg/scripts/build-native.sh"
  rm -rf "$pkg/dist" "$pkg/esm"
  (cd "$pkg" && ./node_modules/.bin/tsc -p tsconfig.json && node scripts/gen-esm.js)
  mkdir -p "$TASKER_TS_DIST"
  rm -f "$TASKER_TS_DIST"/tasker-core-*.tgz
  (cd "$pkg" && npm pack --pack-destination "$TASKER_TS_DIST" --loglevel=error) >/dev/null
  TS_TGZ=$(ls "$TASKER_TS_DIST"/tasker-core-*.tgz)
  local listing want
  listing=$(tar -tzf "$TS_TGZ")
  for want in package/package.json package/dist/index.js package/dist/index.d.ts package/esm/index.mjs \
    package/esm/index.d.mts package/README.md; do
    grep -qx "$want" <<<"$listing" || { echo "error: $want is missing from $(basename "$TS_TGZ")" >&2; exit 1; }
  done
  grep -q '^package/native/tasker_node\..*\.node$' <<<"$listing" || { echo "error: no addon in $(basename "$TS_TGZ")" >&2; exit 1; }
  tar -xzOf "$TS_TGZ" package/package.json | node -e '
    const p = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const k of ["dependencies", "optionalDependencies", "peerDependencies", "bundleDependencies"]) {
      if (p[k] && Object.keys(p[k]).length) { console.error(`error: the package declares ${k}`); process.exit(1); }
    }'
  echo "packed $(basename "$TS_TGZ") ($(du -h "$TS_TGZ" | cut -f1)) into $TASKER_TS_DIST" >&2
}

# Makes DIR a small npm project with the tarball installed (offline: it has no
# runtime dependencies).
install_typescript_tarball() {
  local dir="$1" tgz="$2"
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || printf '{ "name": "tasker-app", "version": "0.0.0", "private": true }\n' >"$dir/package.json"
  (cd "$dir" && npm install --offline --no-audit --no-fund --loglevel=error "$tgz") >&2
  test -f "$dir/node_modules/tasker-core/package.json"
}

# Sets PY_WHEEL, RUBY_GEM and TS_TGZ to the packages already in $TASKER_CACHE_DIR
# (built by an earlier phase); fails naming what is missing.
find_built_packages() {
  PY_WHEEL=$(ls "$TASKER_PYTHON_DIST"/*.whl 2>/dev/null | head -1)
  RUBY_GEM=$(ls "$TASKER_RUBY_DIST"/tasker-core-*.gem 2>/dev/null | head -1)
  TS_TGZ=$(ls "$TASKER_TS_DIST"/tasker-core-*.tgz 2>/dev/null | head -1)
  local missing=""
  [ -n "$PY_WHEEL" ] || missing="$missing python wheel ($TASKER_PYTHON_DIST)"
  [ -n "$RUBY_GEM" ] || missing="$missing ruby gem ($TASKER_RUBY_DIST)"
  [ -n "$TS_TGZ" ] || missing="$missing npm tarball ($TASKER_TS_DIST)"
  if [ -n "$missing" ]; then
    echo "error: no package built yet:$missing; run without --reuse to build them" >&2
    exit 2
  fi
}

# Compiles the TypeScript files of SRC_DIR (its .ts and .mts files) into DIR/out,
# against the tasker-core package installed in DIR/node_modules (types from the
# installed package, @types/node from bindings-typescript's dev dependencies);
# strict, so a type error fails.
typescript_compile_app() {
  local dir="$1" src="$2"
  local pkg="$PWD/bindings-typescript"
  if [ ! -x "$pkg/node_modules/.bin/tsc" ]; then
    (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
  mkdir -p "$dir/src"
  cp "$src"/*.ts "$dir/src/"
  if compgen -G "$src/*.mts" >/dev/null; then cp "$src"/*.mts "$dir/src/"; fi
  cat >"$dir/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "lib": ["ES2022"],
    "strict": true,
    "noImplicitOverride": true,
    "types": ["node"],
    "typeRoots": ["$pkg/node_modules/@types"],
    "rootDir": "src",
    "outDir": "out"
  },
  "include": ["src"]
}
JSON
  (cd "$dir" && "$pkg/node_modules/.bin/tsc" -p tsconfig.json)
}

# Shared helpers for scripts/demo and scripts/test. Sourced, not run.

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

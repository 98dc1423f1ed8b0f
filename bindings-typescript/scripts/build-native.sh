#!/usr/bin/env bash
# Builds the addon (cargo, release) and copies it, stripped, to
# native/tasker_node.<platform>-<arch>-<libc>.node, where ts/native.ts loads it.
# CARGO_TARGET_DIR: as given, else scripts/lib.sh's default (outside the clone).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here/.."
. scripts/lib.sh
require_cargo
cargo build --release -p tasker-node
case "$(uname -s)" in
  Linux) platform=linux; lib=libtasker_node.so ;;
  Darwin) platform=darwin; lib=libtasker_node.dylib ;;
  *) echo "error: unsupported platform $(uname -s)" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "error: unsupported architecture $(uname -m)" >&2; exit 2 ;;
esac
suffix="$platform-$arch"
if [ "$platform" = linux ]; then
  if ldd --version 2>&1 | grep -qi musl; then suffix="$suffix-musl"; else suffix="$suffix-gnu"; fi
fi
mkdir -p "$here/native"
rm -f "$here"/native/*.node
out="$here/native/tasker_node.$suffix.node"
if command -v strip >/dev/null 2>&1; then
  strip --strip-debug -o "$out" "$CARGO_TARGET_DIR/release/$lib" 2>/dev/null || cp "$CARGO_TARGET_DIR/release/$lib" "$out"
else
  cp "$CARGO_TARGET_DIR/release/$lib" "$out"
fi
echo "native addon: $out ($(du -h "$out" | cut -f1))" >&2

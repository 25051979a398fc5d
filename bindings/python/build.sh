#!/usr/bin/env bash
# Builds the wallet library for foreign languages (crates/mpay-wallet-ffi)
# and generates its Python bindings from the built library (UniFFI library
# mode) into bindings/python/generated/: the module mpay_wallet_ffi.py with
# libmpay_wallet_ffi.so beside it. Put that folder on PYTHONPATH.
#
# Kotlin and Swift come from the same library the same way (not run here):
#   cargo run -p mpay-wallet-ffi --features bindgen --bin uniffi-bindgen -- generate \
#     --library "$target/debug/libmpay_wallet_ffi.so" --language kotlin --out-dir OUT
#   ... --language swift --out-dir OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
out=bindings/python/generated
# The test profile (what `cargo test` builds) reuses the workspace's test
# build; its output is in $target/debug too.
cargo build -q --profile test -p mpay-wallet-ffi --lib
lib="$target/debug/libmpay_wallet_ffi.so"
rm -rf "$out"
mkdir -p "$out"
cargo run -q --profile test -p mpay-wallet-ffi --features bindgen --bin uniffi-bindgen -- generate \
  --library "$lib" --language python --out-dir "$out"
cp "$lib" "$out/"
echo "python bindings in $out"

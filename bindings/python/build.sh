#!/usr/bin/env bash
# Builds the wallet library for foreign languages (crates/mpay-wallet-ffi)
# and generates its Python bindings from the built library (UniFFI library
# mode) into bindings/python/generated/: the module mpay_wallet_ffi.py with
# libmpay_wallet_ffi.so beside it. Put that folder on PYTHONPATH.
#
# The library and the generator (`uniffi-bindgen`, the same UniFFI version)
# are the ones `cargo test --workspace` builds: this asks that same build
# where they are, so after the tests it builds nothing. (`cargo build -p
# mpay-wallet-ffi` would resolve the dependencies' features for that crate
# alone and build some hundred crates again.)
#
# Kotlin and Swift come from the same library the same way (not run here):
#   GENERATOR generate --library LIBRARY --language kotlin --out-dir OUT
#   GENERATOR generate --library LIBRARY --language swift --out-dir OUT
# with the two paths this script prints.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bindings/python/generated

paths=$(cargo test --workspace --no-run --quiet --message-format=json | python3 -c '
import json, sys
lib = gen = None
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact":
        continue
    t = m["target"]
    if t["name"] == "mpay_wallet_ffi" and "cdylib" in t["kind"]:
        lib = next((f for f in m["filenames"] if f.endswith((".so", ".dylib", ".dll"))), lib)
    if t["name"] == "uniffi-bindgen" and t["kind"] == ["bin"] and not m["profile"]["test"]:
        gen = m["executable"]
if not lib or not gen:
    sys.exit("cargo built no mpay_wallet_ffi library or uniffi-bindgen generator")
print(lib)
print(gen)
')
lib=$(sed -n 1p <<<"$paths")
generator=$(sed -n 2p <<<"$paths")
echo "library: $lib"
echo "generator: $generator"

rm -rf "$out"
mkdir -p "$out"
"$generator" generate --library "$lib" --language python --out-dir "$out"
cp "$lib" "$out/"
echo "python bindings in $out"

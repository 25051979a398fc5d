//! The bindings generator, the same version as the scaffolding:
//! `cargo run -p mpay-wallet-ffi --features bindgen --bin uniffi-bindgen --
//! generate --library target/debug/libmpay_wallet_ffi.so --language python
//! --out-dir OUT`
//! (`bindings/python/build.sh` does this).

fn main() {
    uniffi::uniffi_bindgen_main()
}

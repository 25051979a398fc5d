//! The bindings generator, the same version as the scaffolding:
//! `uniffi-bindgen generate --library PATH/libmpay_wallet_ffi.so --language
//! python --out-dir OUT` (`bindings/python/build.sh` does this with the
//! library and the generator `cargo test --workspace` built).

fn main() {
    uniffi::uniffi_bindgen_main()
}

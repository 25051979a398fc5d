//! The generator built with the library makes Python bindings from it that
//! expose the wallet's API: the `Wallet` object and its flows, the typed
//! `WalletException`, the foreign `ProgressListener`, `CancelToken`.
//! (`bindings/python/tests` then drive those bindings against a real
//! office.)

use std::path::PathBuf;
use std::process::Command;

/// The cdylib cargo built beside this test's binary (the library target
/// is built with all its crate types).
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let deps = exe.parent().expect("the deps folder");
    let name = format!(
        "{}mpay_wallet_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let lib = deps.join(&name);
    assert!(lib.exists(), "no {name} in {}", deps.display());
    lib
}

#[test]
fn the_generator_makes_python_bindings_of_the_wallet_api() {
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--library"])
        .arg(library())
        .args(["--language", "python", "--out-dir"])
        .arg(out.path())
        .output()
        .expect("the generator runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let module =
        std::fs::read_to_string(out.path().join("mpay_wallet_ffi.py")).expect("the Python module");
    for api in [
        "class Wallet(",
        "def create(",
        "def open(",
        "def buy(",
        "def sell(",
        "def sync(",
        "def change_pin(",
        "class WalletException(",
        "class ProgressListener(",
        "class CancelToken(",
    ] {
        assert!(module.contains(api), "the bindings lack {api:?}");
    }
}

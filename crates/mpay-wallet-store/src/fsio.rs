//! Small durable file operations: write-to-temp + fsync + rename + fsync(dir).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// `path` with `suffix` appended to its file name (`wallet.db` → `wallet.db.kdf`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Whether anything (file, directory, dangling link) is at `path`.
pub(crate) fn exists(path: &Path) -> Result<bool, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Makes the directory entries in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Makes a file's contents durable.
pub(crate) fn sync_file(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(path, e))
}

/// Replaces `path` with `contents` atomically and durably, readable by the
/// owner only ([`mpay_fs::write_atomic`]): after a crash the file holds
/// either the old or the new contents, and once this returns the new
/// contents survive a crash.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    mpay_fs::write_atomic(path, contents).map_err(|e| StoreError::io(path, e))
}

/// Renames `from` to `to` (replacing `to`) and makes the rename durable.
pub(crate) fn rename_durable(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(|e| StoreError::io(to, e))?;
    sync_dir(parent_dir(to))
}

/// Removes `path` if it is there and makes the removal durable.
pub(crate) fn remove_durable(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent_dir(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Reads at most `limit` bytes from the start of a file; a missing file is
/// `NotFound`.
pub(crate) fn read_prefix(path: &Path, limit: usize) -> Result<Vec<u8>, StoreError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound {
            path: path.to_path_buf(),
        },
        _ => StoreError::io(path, e),
    })?;
    let mut bytes = Vec::with_capacity(limit);
    file.take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::io(path, e))?;
    Ok(bytes)
}

//! The one durable file write of the workspace: every file that holds a
//! key, a token or a wallet's state is written with [`write_atomic`].
//!
//! The contents go to a temporary file in the same directory, created with
//! mode 0600 (owner only) from its first byte on Unix, then fsynced, renamed
//! over the target, and the directory fsynced. A reader sees the old file
//! or the new one, never half of one; once the call returns the new
//! contents survive a crash; and no other user can read a secret at any
//! moment, whatever the process's umask (no chmod after the write).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The permission bits of every file [`write_atomic`] creates.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Suffix of the temporary file beside the target.
pub const TMP_SUFFIX: &str = ".tmp";

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The temporary file [`write_atomic`] writes before renaming it to `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Makes the directory entries of `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    options.open(path)
}

/// Replaces `path` with `contents` atomically and durably, readable by the
/// owner only from the start (see the crate documentation). A stale
/// temporary file from an earlier crash is removed first, so the file
/// written is always a fresh one with mode 0600. On error the target is
/// untouched and the temporary file is removed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let written = create_private(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent_dir(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_private_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("mpay-fs-new-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.toml");
        // A stale temporary file left open to everyone by an earlier crash
        // must not be reused: its mode would carry over.
        fs::write(tmp_path(&path), b"stale").unwrap();
        fs::set_permissions(tmp_path(&path), fs::Permissions::from_mode(0o666)).unwrap();
        // An older target readable by everyone is replaced by a private one.
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"token = \"s3cret\"").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"token = \"s3cret\"");
        assert!(!tmp_path(&path).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_temporary_file_is_created_private() {
        // The file the contents are first written to is 0600 the moment it
        // exists, before any byte is in it.
        let dir = std::env::temp_dir().join(format!("mpay-fs-tmp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let file = create_private(&tmp_path(&path)).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
        assert_eq!(mode(&tmp_path(&path)), PRIVATE_FILE_MODE);
        // It is never opened twice: an existing one is an error, not reused.
        assert!(create_private(&tmp_path(&path)).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replace_is_whole_or_nothing() {
        let dir = std::env::temp_dir().join(format!("mpay-fs-replace-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"3").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"3");
        // A write that cannot complete (the target is a directory) leaves
        // the target as it was and no temporary file behind.
        let blocked = dir.join("blocked");
        fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write_atomic(&blocked, b"x").is_err());
        assert!(blocked.join("inside").is_dir());
        assert!(!tmp_path(&blocked).exists());
        // A missing directory is an error, not a panic.
        assert!(write_atomic(&dir.join("missing").join("f"), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bare_file_names_sync_the_current_directory() {
        assert_eq!(parent_dir(Path::new("f")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/a/f")), Path::new("/a"));
        assert_eq!(tmp_path(Path::new("/a/f.toml")), Path::new("/a/f.toml.tmp"));
    }
}

//! The node key file: the node's secret key beside its database, so its ticket (its
//! endpoint id) survives restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use seedbank_net::SecretKey;

use crate::error::{Error, Result};

/// `<db>.key`.
pub(crate) fn key_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Loads the node key kept beside the database `db` (`<db>.key`), creating it with mode
/// 0600 on first use.
///
/// # Errors
/// [`Error::File`] if the file cannot be read or written, or is not a 32-byte key.
pub fn load_or_create_key(db: &Path) -> Result<SecretKey> {
    load_or_create_key_at(&key_path(db))
}

/// Loads the key file at `path`, creating it with mode 0600 if absent.
pub(crate) fn load_or_create_key_at(path: &Path) -> Result<SecretKey> {
    let path = path.to_path_buf();
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| Error::File {
                what: "read the node key",
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} bytes, not a 32-byte key", bytes.len()),
                ),
            })?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            write_atomically(&path, &key.to_bytes(), 0o600).map_err(|source| Error::File {
                what: "write the node key",
                path,
                source,
            })?;
            Ok(key)
        }
        Err(source) => Err(Error::File {
            what: "read the node key",
            path,
            source,
        }),
    }
}

/// Writes `data` to a temporary file beside `path`, syncs it, and renames it over `path`.
/// The temporary file is created exclusively (never through a file or link already there)
/// with `mode` from the start, and removed if anything fails.
pub fn write_atomically(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp)?;
    let mut write = || -> std::io::Result<()> {
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp); // Ours: created exclusively above.
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_written_through_an_exclusive_temp_file_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let key = load_or_create_key(&db).unwrap();
        assert_eq!(load_or_create_key(&db).unwrap().to_bytes(), key.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&db))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A file planted at the temp path is refused, left alone, and no key is written.
        let other = dir.path().join("b.db");
        let mut planted = key_path(&other).into_os_string();
        planted.push(format!(".tmp{}", std::process::id()));
        std::fs::write(&planted, b"planted").unwrap();
        assert!(matches!(
            load_or_create_key(&other),
            Err(Error::File { .. })
        ));
        assert_eq!(std::fs::read(&planted).unwrap(), b"planted");
        assert!(!key_path(&other).exists());
        // A file of the wrong size is refused.
        std::fs::write(key_path(&other), b"short").unwrap();
        assert!(matches!(
            load_or_create_key(&other),
            Err(Error::File { .. })
        ));
    }
}

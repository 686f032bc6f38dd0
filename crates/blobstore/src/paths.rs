//! The files that live beside a database `<db>`, named here and nowhere else: SQLite's
//! write-ahead log `<db>-wal` and its shared-memory index `<db>-shm`, and the store's owner
//! lock `<db>.lock` (see `owner`).

use std::path::{Path, PathBuf};

/// `db` with `suffix` appended to its file name.
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The WAL file SQLite keeps beside the database at `db` (`<db>-wal`).
pub fn wal_path(db: &Path) -> PathBuf {
    beside(db, "-wal")
}

/// The shared-memory WAL index SQLite keeps beside the database at `db` (`<db>-shm`).
pub fn shm_path(db: &Path) -> PathBuf {
    beside(db, "-shm")
}

/// The owner lock file beside the database at `db` (`<db>.lock`).
pub fn lock_path(db: &Path) -> PathBuf {
    beside(db, ".lock")
}

/// True if the database's WAL file exists and holds frames (more than its 32-byte header).
pub(crate) fn wal_has_frames(db: &Path) -> bool {
    std::fs::metadata(wal_path(db)).is_ok_and(|m| m.len() > 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_beside_the_database_has_its_own_suffix() {
        let db = Path::new("/data/seed bank.db");
        assert_eq!(wal_path(db), Path::new("/data/seed bank.db-wal"));
        assert_eq!(shm_path(db), Path::new("/data/seed bank.db-shm"));
        assert_eq!(lock_path(db), Path::new("/data/seed bank.db.lock"));
    }
}

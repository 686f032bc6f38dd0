//! The lifecycle commands end to end: pin, pins, unpin, delete, gc, backup, verify --repair.

use crate::common::{seedbank, stderr, stdout};

fn put(db: &std::path::Path, dir: &std::path::Path, name: &str, body: &[u8]) -> String {
    let file = dir.join(name);
    std::fs::write(&file, body).unwrap();
    let out = seedbank(db, &["put", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).split('\t').next().unwrap().to_string()
}

#[test]
fn pin_gc_delete_backup_and_repair() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("life.db");
    let kept = put(&db, dir.path(), "kept", b"kept blob");
    let junk = put(&db, dir.path(), "junk", &[9u8; 5000]);

    assert!(seedbank(&db, &["pin", "doc", &kept]).status.success());
    let pins = seedbank(&db, &["pins"]);
    assert_eq!(stdout(&pins), format!("doc\troot {kept}\n"));

    let dry = stdout(&seedbank(&db, &["gc", "--dry-run"]));
    assert!(dry.starts_with("would free 1 blobs, 5000 bytes"), "{dry}");
    assert!(seedbank(&db, &["has", &junk]).status.success());
    let gc = stdout(&seedbank(&db, &["gc"]));
    assert!(gc.starts_with("freed 1 blobs, 5000 bytes"), "{gc}");
    assert!(!seedbank(&db, &["has", &junk]).status.success());

    let refused = seedbank(&db, &["delete", &kept]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("protected by pin doc"),
        "{}",
        stderr(&refused)
    );

    let backup = dir.path().join("copy.db");
    let b = seedbank(&db, &["backup", backup.to_str().unwrap()]);
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(
        stdout(&b).contains("1 CIDs, integrity ok"),
        "{}",
        stdout(&b)
    );
    assert!(seedbank(&backup, &["has", &kept]).status.success());

    // Corrupt the pinned blob behind the store's back; repair removes it, a re-put heals.
    let conn = seedbank::blobstore::rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE blob_data SET data = x'00'", [])
        .unwrap();
    drop(conn);
    assert!(!seedbank(&db, &["verify"]).status.success());
    let repaired = seedbank(&db, &["verify", "--repair"]);
    assert!(repaired.status.success(), "{}", stdout(&repaired));
    assert!(stdout(&repaired).contains(&format!("removed corrupt {kept}")));
    assert!(!seedbank(&db, &["has", &kept]).status.success());
    assert_eq!(put(&db, dir.path(), "kept", b"kept blob"), kept);
    assert!(seedbank(&db, &["verify"]).status.success());

    let forced = seedbank(&db, &["delete", "--force", &kept]);
    assert_eq!(stdout(&forced), "deleted 1 blobs, 9 bytes\n");
    assert!(seedbank(&db, &["unpin", "doc"]).status.success());
    assert!(!seedbank(&db, &["unpin", "doc"]).status.success());
    assert_eq!(stdout(&seedbank(&db, &["pins"])), "");
}

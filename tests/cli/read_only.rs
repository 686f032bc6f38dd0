//! Read commands behave as Unix users expect: they never create or change the database,
//! they work beside a running owner and on a full disk, and a closed stdout is not a crash.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use seedbank::blobstore::testing::Tmpfs;

use crate::common::{fixture, seedbank, stderr, stdout, SAMPLE_ROOT};

/// Every read command, with arguments that are valid on the imported fixture.
fn read_commands() -> Vec<Vec<&'static str>> {
    let child = "bafy2bzacecidz5h57gzjxhuwr5jy4d5gnu73ukfqoquksoq5qwmdihoycq25c";
    vec![
        vec!["get", SAMPLE_ROOT],
        vec!["info", SAMPLE_ROOT],
        vec!["has", SAMPLE_ROOT],
        vec!["stats"],
        vec!["verify"],
        vec!["links", SAMPLE_ROOT],
        vec!["backlinks", child],
        vec!["missing", SAMPLE_ROOT],
        vec!["export", SAMPLE_ROOT, "/dev/null"],
    ]
}

fn import_fixture(db: &Path) {
    let car = fixture("sample-v1.car");
    let out = seedbank(db, &["import", car.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn fixtures_are_read_from_inside_the_repository() {
    let car = fixture("sample-v1.car");
    assert!(
        car.starts_with(env!("CARGO_MANIFEST_DIR")),
        "{}",
        car.display()
    );
    assert!(car.is_file(), "{} is missing", car.display());
}

#[test]
fn read_commands_on_a_missing_database_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for db in [dir.path().join("x.db"), dir.path().join("no/such/dir/x.db")] {
        for args in read_commands() {
            let out = seedbank(&db, &args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains(&db.display().to_string()), "{args:?}: {err}");
        }
    }
    let left: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "read commands created {left:?}");
}

#[test]
fn read_commands_answer_beside_a_running_owner_that_keeps_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    import_fixture(&db);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let owner = seedbank::blobstore::Store::open(&db, Default::default()).unwrap();
    // A write the readers' snapshot must see, still in the owner's WAL.
    let cid = runtime
        .block_on(owner.put(seedbank::blobstore::Blob::new(0x55, &b"fresh"[..])))
        .unwrap();
    for args in read_commands() {
        let out = seedbank(&db, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let has = seedbank(&db, &["has", &cid.to_string()]);
    assert_eq!(stdout(&has), format!("{cid}\tyes\n"));
    // A second writer is refused while the owner runs.
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let put = seedbank(&db, &["put", file.to_str().unwrap()]);
    assert_eq!(put.status.code(), Some(1));
    assert!(
        stderr(&put).contains("open for writing by another store"),
        "{}",
        stderr(&put)
    );
    runtime.block_on(owner.close()).unwrap();
}

#[test]
fn read_commands_answer_on_a_full_disk() {
    let Some(fs) = Tmpfs::mount("8m") else {
        // Only reached off CI (mounting needs root); say so rather than pass silently.
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let db = fs.path().join("x.db");
    import_fixture(&db);
    fs.fill();
    let file = fs.path().join("more");
    assert!(
        std::fs::write(&file, vec![1u8; 8192]).is_err(),
        "the disk is full"
    );
    for args in read_commands() {
        let out = seedbank(&db, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let has = seedbank(&db, &["has", SAMPLE_ROOT]);
    assert_eq!(stdout(&has), format!("{SAMPLE_ROOT}\tyes\n"));
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    import_fixture(&db);
    let many: Vec<&str> = std::iter::repeat_n(SAMPLE_ROOT, 5_000).collect();
    for args in [
        vec!["has"],
        vec!["stats", "--json"],
        vec!["links", SAMPLE_ROOT],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .arg("--db")
            .arg(&db)
            .args(&args)
            .args(if args[0] == "has" { &many[..] } else { &[] })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // `| head -c 0`
        let status = child.wait().unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        assert!(status.success(), "{args:?}: {status}");
    }
}

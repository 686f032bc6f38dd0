//! Shared by the SIGKILL tests (`lifecycle_kill.rs`, `kill_loop.rs`): the test binary re-runs
//! one of its own tests as a child writer, its stdout is read line by line on a thread (so
//! every wait has a timeout), the parent SIGKILLs it, and then reopens the database and
//! checks it.
//!
//! Included with `#[path = "common/kill.rs"] mod kill;` by the tests that use it.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use cid::Cid;
use seedbank_blobstore::{Config, PoolKind, Store};
pub use seedbank_index::testing::node;
use seedbank_index::{Index, IndexConfig, PinTarget};

/// Longest the parent waits for any one line of the child before failing the test.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(60);

pub use seedbank_index::testing::raw;

/// A child process running one test of this binary, with its stdout lines.
pub struct ChildProc {
    child: Child,
    lines: Receiver<(Instant, String)>,
    stderr: PathBuf,
    killed: bool,
}

impl ChildProc {
    /// Runs the test `test` of the current binary with `envs` set; its stderr goes to the
    /// file `stderr` (shown if the parent fails waiting for it).
    pub fn spawn(test: &str, envs: &[(&str, String)], stderr: &Path) -> ChildProc {
        let err = std::fs::File::create(stderr).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        // Child tests are `#[ignore]`d, so a plain `cargo test` counts them as ignored.
        cmd.args([
            "--ignored",
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        ChildProc {
            child,
            lines: rx,
            stderr: stderr.to_path_buf(),
            killed: false,
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The next stdout line; panics (after killing the child) if none comes within
    /// [`LINE_TIMEOUT`] or the child exited.
    pub fn next_line(&mut self) -> (Instant, String) {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                self.kill();
                let why = match e {
                    RecvTimeoutError::Timeout => "timed out waiting for the child",
                    RecvTimeoutError::Disconnected => "the child exited early",
                };
                panic!("{why}; its stderr:\n{}", self.stderr_text());
            }
        }
    }

    /// A line if one is ready now (`None` if none is, or the child exited).
    pub fn try_line(&mut self) -> Option<(Instant, String)> {
        self.lines.try_recv().ok()
    }

    /// Waits up to `d` for a line.
    pub fn line_within(&mut self, d: Duration) -> Option<(Instant, String)> {
        self.lines.recv_timeout(d).ok()
    }

    /// SIGKILLs the child (no close, no checkpoint) and reaps it; returns when it was sent.
    pub fn kill(&mut self) -> Instant {
        let at = Instant::now();
        if !self.killed {
            self.killed = true;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        at
    }

    /// After [`ChildProc::kill`]: every line the child wrote that was not read yet.
    pub fn drain(&mut self) -> Vec<(Instant, String)> {
        assert!(self.killed, "drain after kill");
        let mut out = Vec::new();
        // The reader thread ends at EOF, which the dead child's pipe reaches at once.
        while let Ok(line) = self.lines.recv_timeout(LINE_TIMEOUT) {
            out.push(line);
        }
        out
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The index's own tables agree with the store's and with each other: every index row has
/// its blob and the other way round (every blob in these tests is written through the
/// index), no link, membership or attribute row outlives its blob, every link count matches,
/// and no blob bytes are left without a metadata row. One problem per line.
pub async fn index_problems(store: &Store) -> Vec<String> {
    store
        .read(PoolKind::Data, |conn| {
            let tx = conn.unchecked_transaction()?;
            let checks: [(&str, &str); 7] = [
                (
                    "index rows without a blob",
                    "SELECT count(*) FROM blob_index i WHERE i.mh <> X'' AND NOT EXISTS
                     (SELECT 1 FROM blobs b WHERE b.mh = i.mh AND b.codec = i.codec)",
                ),
                (
                    "blobs without an index row",
                    "SELECT count(*) FROM blobs b WHERE NOT EXISTS
                     (SELECT 1 FROM blob_index i WHERE i.mh = b.mh AND i.codec = b.codec)",
                ),
                (
                    "links of a deleted blob",
                    "SELECT count(*) FROM links l WHERE NOT EXISTS
                     (SELECT 1 FROM blob_index i WHERE i.seq = l.src)",
                ),
                (
                    "scope members that are not indexed",
                    "SELECT count(*) FROM scope_members m WHERE NOT EXISTS
                     (SELECT 1 FROM blob_index i WHERE i.seq = m.blob)",
                ),
                (
                    "attributes of a deleted blob",
                    "SELECT count(*) FROM attributes a WHERE NOT EXISTS
                     (SELECT 1 FROM blob_index i WHERE i.seq = a.src)",
                ),
                (
                    "index rows whose link count is wrong",
                    "SELECT count(*) FROM blob_index i WHERE i.mh <> X'' AND i.links <>
                     (SELECT count(*) FROM links l WHERE l.src = i.seq)",
                ),
                (
                    "blob bytes without a metadata row",
                    // `NOT IN` builds a temporary index: `blobs.data_id` has none.
                    "SELECT count(*) FROM blob_data WHERE id NOT IN (SELECT data_id FROM blobs)",
                ),
            ];
            let mut problems = Vec::new();
            for (what, sql) in checks {
                let n: i64 = tx.query_row(sql, [], |r| r.get(0))?;
                if n != 0 {
                    problems.push(format!("{n} {what}"));
                }
            }
            Ok(problems)
        })
        .await
        .unwrap()
}

/// Opens the database a killed writer left, and checks it: every CID of `acked` is stored,
/// [`Store::verify`] (every blob re-hashed, `PRAGMA integrity_check`, no orphan metadata)
/// finds nothing, and [`index_problems`] finds nothing. Returns the open index.
pub async fn reopen_and_check(path: &Path, acked: &[Cid], what: &str) -> Index {
    let store = Store::open(path, Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    let present = index.store().has_many(acked).await.unwrap();
    let lost: Vec<&Cid> = acked
        .iter()
        .zip(&present)
        .filter(|(_, p)| !**p)
        .map(|(c, _)| c)
        .collect();
    assert!(
        lost.is_empty(),
        "{what}: {} of {} acknowledged/protected blobs lost, e.g. {}",
        lost.len(),
        acked.len(),
        lost[0]
    );
    let report = index.store().verify().await.unwrap();
    assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
    let problems = index_problems(index.store()).await;
    assert!(problems.is_empty(), "{what}: {problems:?}");
    index
}

/// Every stored CID that some named pin reaches (pin roots and pinned-scope members, with
/// what they reach through the link index), deduplicated.
pub async fn pinned_closure(index: &Index) -> std::collections::HashSet<Cid> {
    let mut out = std::collections::HashSet::new();
    for pin in index.pins().await.unwrap() {
        let roots = match pin.target {
            PinTarget::Root(root) => vec![root],
            PinTarget::Scope(scope) => index.scope_members(&scope).await.unwrap(),
        };
        for root in roots {
            out.extend(index.reachable(&root).await.unwrap());
        }
    }
    out
}

/// Stored CIDs (metadata rows).
pub async fn stored_count(store: &Store) -> u64 {
    store.contents().await.unwrap().cids
}

//! Helpers for tests of this workspace (and of applications embedding it): bounded waits,
//! so a stuck lane or a missed condition fails a test with a message instead of hanging it.
//! Not part of the stable API.

use std::future::Future;
use std::time::Duration;

/// How long [`wait_for`] and [`bounded`] wait before failing the test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Awaits `f`; panics naming `what` if it takes longer than [`WAIT_LIMIT`].
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    bounded_for(WAIT_LIMIT, what, f).await
}

/// Awaits `f`; panics naming `what` if it takes longer than `limit` (for whole stress runs
/// that outlast [`WAIT_LIMIT`]).
pub async fn bounded_for<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("waited {limit:?} for {what}"))
}

/// Polls `cond` every millisecond until it holds; panics naming `what` after
/// [`WAIT_LIMIT`].
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// Polls the async `cond` every millisecond until it holds; panics naming `what` after
/// [`WAIT_LIMIT`].
pub async fn wait_for_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    bounded(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// A small tmpfs mounted on a fresh directory, unmounted (and the directory removed) on
/// drop: a real file system that tests can fill to the last byte. Mounting needs root
/// (tests run as root in CI); [`Tmpfs::mount`] returns `None` where it cannot.
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `"8m"`).
    pub fn mount(size: &str) -> Option<Tmpfs> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // By hand, not `tempfile`: that crate is only a dev-dependency of this library.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("seedbank-tmpfs-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let fs = Tmpfs(dir);
        fs.run_mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .then_some(fs)
    }

    /// The mount point.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Grows or shrinks the file system to `size` in place (`remount`); false if refused.
    pub fn resize(&self, size: &str) -> bool {
        self.run_mount(&["-o", &format!("remount,size={size}")])
    }

    /// Writes zeros to a file `fill` until the file system has no byte left.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("fill")).expect("create the fill file");
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    /// Removes what [`Tmpfs::fill`] wrote.
    pub fn free(&self) {
        std::fs::remove_file(self.0.join("fill")).expect("remove the fill file");
    }

    fn run_mount(&self, args: &[&str]) -> bool {
        std::process::Command::new("mount")
            .args(args)
            .arg(&self.0)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

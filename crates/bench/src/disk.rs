//! The disk's own ceiling: raw sequential write bandwidth of the benchmark's directory,
//! measured in the same run as the engines, so each engine's payload rate can be read as a
//! fraction of what the hardware does.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

/// How fast the directory takes durable sequential writes.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct DiskFigures {
    /// Bytes written.
    pub bytes: u64,
    /// `fdatasync` every this many bytes (and once at the end), as a WAL checkpoint would.
    pub sync_every: u64,
    /// Durable write bandwidth, MB/s (10^6 bytes).
    pub mb_per_sec: f64,
}

/// Writes `bytes` of incompressible data to a temporary file in `dir` in 1 MiB writes with an
/// `fdatasync` every 64 MiB and at the end, and times it.
///
/// # Errors
/// I/O errors creating or writing the file.
pub fn measure(dir: &Path, bytes: u64) -> std::io::Result<DiskFigures> {
    const CHUNK: usize = 1 << 20;
    const SYNC_EVERY: u64 = 64 << 20;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    // Distinct bytes per chunk: no filesystem can compress or deduplicate them away.
    let mut chunk = vec![0u8; CHUNK];
    let started = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        for (i, b) in chunk.iter_mut().enumerate().step_by(4096) {
            *b = (written as usize ^ i) as u8;
        }
        file.write_all(&chunk)?;
        written += CHUNK as u64;
        if written.is_multiple_of(SYNC_EVERY) {
            file.as_file().sync_data()?;
        }
    }
    file.as_file().sync_data()?;
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    Ok(DiskFigures {
        bytes: written,
        sync_every: SYNC_EVERY,
        mb_per_sec: written as f64 / seconds / 1e6,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_durable_writes_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let d = super::measure(dir.path(), 3 << 20).unwrap();
        assert_eq!(d.bytes, 3 << 20);
        assert!(d.mb_per_sec > 0.0 && d.mb_per_sec.is_finite());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

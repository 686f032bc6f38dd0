//! The machine a run happened on, SQLite's version and the process's peak memory.
//!
//! Read from `/proc` where it exists (Linux); elsewhere the fields say "unknown".

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Where and when the benchmark ran.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// UTC date and time the run started, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// CPU model name.
    pub cpu: String,
    /// Logical CPUs this process may use.
    pub cpus: usize,
    /// Physical memory, bytes (0 if unknown).
    pub memory_bytes: u64,
    /// Operating system and kernel.
    pub os: String,
    /// SQLite library version (bundled with rusqlite).
    pub sqlite: String,
    /// Directory holding the benchmark databases.
    pub db_dir: String,
    /// 1, 5 and 15 minute load averages when the run started (other work on the machine
    /// shows here, and in the spread between repeats).
    pub load_average: String,
}

impl Machine {
    /// Describes this machine; `db_dir` is where the databases are written.
    pub fn detect(db_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = kib_field(&meminfo, "MemTotal").unwrap_or(0);
        let pretty = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| field_eq(&s, "PRETTY_NAME"))
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!(", kernel {}", s.trim()))
            .unwrap_or_default();
        Machine {
            date: utc_now(),
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            os: format!("{pretty}{kernel}"),
            sqlite: seedbank_blobstore::rusqlite::version().to_string(),
            db_dir: db_dir.display().to_string(),
            load_average: load_average(),
        }
    }
}

/// The 1, 5 and 15 minute load averages, or "unknown".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The process's peak resident set size (`VmHWM`), bytes; 0 where `/proc` is missing.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| kib_field(&s, "VmHWM"))
        .unwrap_or(0)
}

/// The process's resident set size now (`VmRSS`), bytes; 0 where `/proc` is missing.
pub fn current_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| kib_field(&s, "VmRSS"))
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0), so the next [`peak_rss`] covers
/// only what follows. Returns false where that is not possible (the peak then spans the
/// whole process).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time used by the whole process so far (all threads, living and exited), seconds.
/// Linux reports it in clock ticks of 1/100 s (`USER_HZ`); 0 where `/proc` is missing.
pub fn process_cpu_seconds() -> f64 {
    const USER_HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / USER_HZ
}

/// CPU time of this process's living threads whose name starts with `prefix`, seconds
/// (nanosecond precision from `/proc/self/task/*/schedstat`); `None` if there is none.
pub fn thread_cpu_seconds(prefix: &str) -> Option<f64> {
    let mut total = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let named = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|c| c.trim_end().starts_with(prefix));
        if !named {
            continue;
        }
        let ns: Option<u64> = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        if let Some(ns) = ns {
            *total.get_or_insert(0.0) += ns as f64 / 1e9;
        }
    }
    total
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().to_string())
}

fn field_eq(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

/// A `Name:  123 kB` field, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let value = field(text, name)?;
    let kib: u64 = value.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Bytes this process caused to be written to storage so far (`write_bytes` of
/// `/proc/self/io`: WAL, checkpoints and all); `None` where the kernel does not say.
pub fn disk_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_convert_to_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn this_thread_uses_cpu() {
        std::thread::Builder::new()
            .name("bench-cpu-probe".into())
            .spawn(|| {
                // Spin until the kernel has charged this thread 10 ms of CPU: the lookup must
                // find the thread and see its time grow (a shared machine may take a while).
                let first = thread_cpu_seconds("bench-cpu-probe").expect("thread found");
                let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
                let mut used = first;
                while used < first + 0.01 && std::time::Instant::now() < give_up {
                    used = thread_cpu_seconds("bench-cpu-probe").expect("thread found");
                }
                assert!(used >= first + 0.01, "{first} -> {used}");
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(thread_cpu_seconds("no-such-thread").is_none());
    }

    #[test]
    fn proc_fields_parse() {
        assert_eq!(kib_field("VmHWM:\t  1024 kB\n", "VmHWM"), Some(1024 * 1024));
        assert_eq!(
            field_eq("PRETTY_NAME=\"Debian\"\n", "PRETTY_NAME").as_deref(),
            Some("Debian")
        );
    }
}

//! Output helpers: every line goes through a fallible write, so a closed stdout (`| head`)
//! ends the command with an `io::Error` that `main` turns into a quiet exit, never a panic.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

/// Writes one formatted line to stdout, returning `std::io::Result<()>`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Writes bytes to stdout as they are (a blob's contents).
pub fn raw(data: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)?;
    out.flush()
}

/// Writes a value as pretty JSON followed by a newline.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // serde_json hides the io::Error it hit; hand it back so a closed pipe is recognised.
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// A time as RFC 3339 UTC with milliseconds, e.g. `2026-12-02T06:41:07.123Z`.
pub fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// True when `e` (or anything in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Exit 0 when a check passed, 1 when it did not.
pub fn verdict(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

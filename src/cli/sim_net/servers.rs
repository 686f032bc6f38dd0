//! The `seedbank serve` child processes of a multi-process simulation.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use seedbank::net::Ticket;

/// One `seedbank serve` child process.
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts `seedbank --db DB serve --ticket-file TICKET [--lie]` and waits for its ticket.
    pub fn spawn(db: &Path, ticket_file: &Path, lie: bool) -> anyhow::Result<Server> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("--db")
            .arg(db)
            .arg("serve")
            .arg("--ticket-file")
            .arg(ticket_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if lie {
            cmd.arg("--lie");
        }
        Ok(Server {
            child: cmd.spawn()?,
        })
    }

    /// CPU seconds (user + system) the process used so far (None off Linux).
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&self.child.id().to_string())
    }

    /// Stops the process with SIGTERM (SIGKILL after 10 s) and reaps it.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a `serve` process to write its ticket file (written atomically).
pub fn wait_ticket(path: &Path) -> anyhow::Result<Ticket> {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok(text.parse()?);
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU seconds (user + system) of a process, from `/proc` (None elsewhere).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

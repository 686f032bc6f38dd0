//! Shared helpers for the CLI tests: run the binary, read its output, find fixtures.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The root of `testdata/car/sample-v1.car` (go-car's fixture).
pub const SAMPLE_ROOT: &str = "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy";

pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/car")
        .join(name)
}

pub fn seedbank(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run seedbank")
}

/// `seedbank --db DB ARGS` with `input` on its standard input.
pub fn seedbank_with_input(db: &Path, args: &[&str], input: &[u8]) -> Output {
    with_input(
        Command::new(env!("CARGO_BIN_EXE_seedbank"))
            .arg("--db")
            .arg(db)
            .args(args),
        input,
    )
}

/// Runs `command` with `input` on its standard input, its output captured. The input is
/// written from a thread: a command may stop reading early (a `put -` over the limit), and
/// a closed pipe is fine.
pub fn with_input(command: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run seedbank");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts `seedbank serve` on `db` with `extra` arguments and waits (bounded) for its
/// ticket file; returns the child and the ticket.
// The child is returned; callers reap it through `terminate` (or kill it).
#[allow(clippy::zombie_processes)]
pub fn start_serve(db: &Path, ticket_file: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .arg("--db")
        .arg(db)
        .arg("serve")
        .arg("--ticket-file")
        .arg(ticket_file)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let start = Instant::now();
    loop {
        if let Ok(ticket) = std::fs::read_to_string(ticket_file) {
            return (child, ticket.trim().to_string());
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `seedbank gateway` on `db` (127.0.0.1, a free port) and reads the URL it prints.
// The child is returned; callers reap it through `terminate`.
#[allow(clippy::zombie_processes)]
pub fn start_gateway(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .arg("--db")
        .arg(db)
        .args(["gateway", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gateway");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
    (child, url)
}

/// Sends SIGTERM and waits (bounded) for the exit; returns what the child printed that
/// was not read yet, and its status.
pub fn terminate(mut child: Child) -> Output {
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(15) {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("the child did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

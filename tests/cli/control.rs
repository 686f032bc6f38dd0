//! Write commands beside a running `seedbank serve` (through its control socket `<db>.sock`),
//! `serve --share`, `serve --http` and the exposure warning, between real processes on
//! 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{fixture, seedbank, stderr, stdout, with_input, SAMPLE_ROOT};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seedbank"))
}

/// `seedbank --db DB ARGS` in `cwd`, with `input` on its standard input.
fn run_in(cwd: &Path, db: &Path, args: &[&str], input: &[u8]) -> Output {
    with_input(bin().current_dir(cwd).arg("--db").arg(db).args(args), input)
}

/// A running `seedbank serve`: its process, ticket and (with `--http`) gateway URL.
struct Serving {
    child: Child,
    ticket: String,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

/// Starts `seedbank --db DB serve ARGS` and reads its ticket from stdout.
// The child is reaped by `stop`.
#[allow(clippy::zombie_processes)]
fn serve(db: &Path, args: &[&str]) -> Serving {
    let mut child = bin()
        .arg("--db")
        .arg(db)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // serve prints its ticket once serving, or exits (closing stdout) on an error.
    let Some(Ok(ticket)) = lines.next() else {
        let out = child.wait_with_output().unwrap();
        panic!("serve did not start: {}", stderr(&out));
    };
    Serving {
        child,
        ticket,
        lines,
    }
}

/// A test that fails before `stop` still ends its server.
impl Drop for Serving {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Serving {
    /// The next line serve printed (the gateway's URL after the ticket).
    fn next_line(&mut self) -> String {
        self.lines.next().expect("a line").expect("utf-8")
    }

    /// SIGTERM, then the exit status and stderr (bounded wait).
    fn stop(mut self) -> (Option<i32>, String) {
        let kill = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                self.child.kill().unwrap();
                panic!("serve did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (self.child.wait().unwrap().code(), err)
    }
}

/// The output a test compares: exit code, stdout, stderr. `gc`'s count of sweep batches
/// depends on how the lane grouped the sweep's writes (timing), run to run and offline
/// too, so it is masked; every other figure must match.
fn seen(o: &Output) -> (Option<i32>, String, String) {
    let out = stdout(o)
        .split(", ")
        .map(|part| {
            if part.starts_with("batches ") {
                "batches _"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    (o.status.code(), out, stderr(o))
}

/// The database `import sample-v1.car` makes, plus the files the commands below use.
fn setup(dir: &Path) -> PathBuf {
    let db = dir.join("base.db");
    let car = fixture("sample-v1.car");
    assert!(seedbank(&db, &["import", car.to_str().unwrap()])
        .status
        .success());
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("tree/sub")).unwrap();
    std::fs::write(files.join("one.txt"), b"one").unwrap();
    std::fs::write(files.join("tree/a.txt"), b"a in tree").unwrap();
    std::fs::write(files.join("tree/sub/b.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(files.join("junk"), vec![3u8; 5000]).unwrap();
    db
}

/// The write commands (and what they read on stdin), each run the same way against the
/// served database and against an offline copy.
fn commands(car: &str) -> Vec<(Vec<String>, Vec<u8>)> {
    let c = |args: &[&str], input: &[u8]| {
        (
            args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            input.to_vec(),
        )
    };
    vec![
        c(&["put", "one.txt", "-", "junk"], b"from stdin"),
        c(&["put", "missing.txt"], b""),
        c(&["put", "-"], &vec![1u8; 3 << 20]),
        c(&["add", "tree", "--pin", "tree"], b""),
        c(&["add", "one.txt", "tree", "--json"], b""),
        c(
            &["add", "-", "--profile", "unixfs-v0-2015"],
            &vec![5u8; 700_000],
        ),
        c(&["add", "nowhere"], b""),
        c(&["import", car], b""),
        c(&["import", "one.txt"], b""),
        c(&["pin", "sample", SAMPLE_ROOT], b""),
        c(&["pin", "bad", "not-a-cid"], b""),
        c(&["unpin", "sample"], b""),
        c(&["unpin", "sample"], b""),
        c(&["delete", SAMPLE_ROOT], b""),
        c(&["delete", "not-a-cid"], b""),
        c(&["gc", "--dry-run"], b""),
        c(&["gc"], b""),
        c(&["backup", "copy.db"], b""),
        c(&["backup", "copy.db"], b""),
    ]
}

#[test]
fn write_commands_beside_a_running_node_print_what_they_print_offline() {
    let dir = tempfile::tempdir().unwrap();
    let base = setup(dir.path());
    let files = dir.path().join("files");
    // Two identical databases: one served, one used offline (backups of the base).
    let served = dir.path().join("served.db");
    let offline = dir.path().join("offline.db");
    for copy in [&served, &offline] {
        assert!(seedbank(&base, &["backup", copy.to_str().unwrap()])
            .status
            .success());
    }
    // Each side runs in a working directory of its own (same relative names), so the
    // backups' destinations and the paths printed are the same text.
    let (served_cwd, offline_cwd) = (dir.path().join("s"), dir.path().join("o"));
    for cwd in [&served_cwd, &offline_cwd] {
        std::fs::create_dir(cwd).unwrap();
        copy_tree(&files, cwd);
    }
    let node = serve(&served, &[]);
    let car = fixture("sample-v2-corrupt-data-and-index.car");
    for (args, input) in commands(car.to_str().unwrap()) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let remote = run_in(&served_cwd, &served, &args, &input);
        let local = run_in(&offline_cwd, &offline, &args, &input);
        assert_eq!(seen(&remote), seen(&local), "{args:?}");
    }
    // The node did the work: the served database holds what the offline one holds.
    let (code, err) = node.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("error"), "{err}");
    for db in [&served, &offline] {
        let stats = stdout(&seedbank(db, &["stats"]));
        assert!(stats.starts_with("blobs stored"), "{stats}");
    }
    let count = |db: &Path| {
        stdout(&seedbank(db, &["stats"]))
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(count(&served), count(&offline));
    assert!(seedbank(&served_cwd.join("copy.db"), &["verify"])
        .status
        .success());
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_node_keeps_serving_peers_while_a_control_request_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = setup(dir.path());
    let node = serve(&db, &[]);
    // `put -` holds a control connection open (and its request in flight) for as long as
    // its standard input is open.
    let mut put = bin()
        .arg("--db")
        .arg(&db)
        .args(["put", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = put.stdin.take().unwrap();
    input.write_all(b"first half, ").unwrap();
    input.flush().unwrap();
    // Meanwhile a peer syncs the whole sample DAG from the node.
    let client = dir.path().join("client.db");
    let sync = seedbank(&client, &["sync", SAMPLE_ROOT, "--peer", &node.ticket]);
    assert_eq!(sync.status.code(), Some(0), "{}", stderr(&sync));
    assert_eq!(
        seedbank(&client, &["missing", SAMPLE_ROOT]).status.code(),
        Some(0)
    );
    assert!(put.try_wait().unwrap().is_none(), "put finished early");
    input.write_all(b"second half").unwrap();
    drop(input);
    let put = put.wait_with_output().unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    // The CID of exactly the bytes sent, as an offline put computes it.
    let offline = run_in(
        dir.path(),
        &dir.path().join("other.db"),
        &["put", "-"],
        b"first half, second half",
    );
    assert_eq!(stdout(&put), stdout(&offline));
    let (code, err) = node.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_control_socket_is_private_and_a_stale_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("node.db");
    let sock = dir.path().join("node.db.sock");
    let node = serve(&db, &[]);
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // No temporary directory is left beside the database.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(".seedbank-sock")),
        "{names:?}"
    );
    let (code, _) = node.stop();
    assert_eq!(code, Some(0));
    assert!(!sock.exists(), "the socket is removed at shutdown");

    // A socket nothing answers on (a node that was killed) is replaced at start.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    // Without a node, write commands open the database themselves, stale socket or not.
    let file = dir.path().join("f");
    std::fs::write(&file, b"offline").unwrap();
    let put = seedbank(&db, &["put", file.to_str().unwrap()]);
    assert!(put.status.success(), "{}", stderr(&put));
    let node = serve(&db, &[]);
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let again = seedbank(&db, &["put", file.to_str().unwrap()]);
    assert_eq!(stdout(&again), stdout(&put), "{}", stderr(&again));
    assert_eq!(node.stop().0, Some(0));

    // Something that is not a socket is never removed: serve refuses to start.
    std::fs::write(&sock, b"not a socket").unwrap();
    let refused = seedbank(&db, &["serve"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("is not a socket"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(&sock).unwrap(), b"not a socket");
    std::fs::remove_file(&sock).unwrap();

    // A locked database with nothing answering: the write command fails as it always did.
    let holder = serve(&db, &[]);
    std::fs::remove_file(&sock).unwrap();
    let locked = seedbank(&db, &["put", file.to_str().unwrap()]);
    assert_eq!(locked.status.code(), Some(1));
    assert!(
        stderr(&locked).contains("is open for writing by another store"),
        "{}",
        stderr(&locked)
    );
    assert_eq!(holder.stop().0, Some(0));
}

/// One HTTP/1.1 GET on 127.0.0.1: status line and body.
fn http_get(url: &str, path: &str) -> (String, Vec<u8>) {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    (
        head.lines().next().unwrap().to_string(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn share_serves_what_is_shared_and_http_serves_a_raw_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("node.db");
    let shared = dir.path().join("shared");
    let private = dir.path().join("private");
    std::fs::write(&shared, b"shared with everyone").unwrap();
    std::fs::write(&private, b"kept to myself").unwrap();
    let put = stdout(&seedbank(
        &db,
        &["put", shared.to_str().unwrap(), private.to_str().unwrap()],
    ));
    let cids: Vec<&str> = put.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert!(seedbank(&db, &["pin", "public", cids[0]]).status.success());

    // Serving everything on a non-loopback address warns (nothing connects to it).
    let open = serve(&db, &["--listen", "0.0.0.0:0"]);
    let (_, err) = open.stop();
    assert!(err.contains("warning: serving every blob"), "{err}");
    let mut node = serve(&db, &["--share", "public", "--http", "127.0.0.1:0"]);
    let url = node.next_line();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let client = dir.path().join("client.db");
    let got = seedbank(&client, &["sync", cids[0], "--peer", &node.ticket]);
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    let refused = seedbank(&client, &["sync", cids[1], "--peer", &node.ticket]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert_eq!(
        stdout(&seedbank(&client, &["get", cids[0]])),
        "shared with everyone"
    );
    assert_eq!(seedbank(&client, &["has", cids[1]]).status.code(), Some(1));

    // The gateway inside the node answers a raw block from the same store.
    let (status, body) = http_get(&url, &format!("/ipfs/{}?format=raw", cids[0]));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, b"shared with everyone");
    // ... and the node takes writes meanwhile, visible to the gateway at once.
    let later = dir.path().join("later");
    std::fs::write(&later, b"written through the node").unwrap();
    let put = seedbank(&db, &["put", later.to_str().unwrap()]);
    assert!(put.status.success(), "{}", stderr(&put));
    let cid = stdout(&put).split('\t').next().unwrap().to_string();
    let (status, body) = http_get(&url, &format!("/ipfs/{cid}?format=raw"));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, b"written through the node");
    let (code, err) = node.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("warning: serving every blob"), "{err}");

    // A gateway others can reach would serve everything: refused with --share.
    let both = seedbank(&db, &["serve", "--share", "public", "--http", "0.0.0.0:0"]);
    assert_eq!(both.status.code(), Some(1));
    assert!(stderr(&both).contains("does not obey"), "{}", stderr(&both));
}

//! Shared helpers for the CLI tests: run the binary, read its output, find fixtures.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

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

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

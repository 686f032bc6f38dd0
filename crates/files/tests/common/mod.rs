//! Fixtures of `testdata/unixfs/expected.json` and the inputs they describe.
#![allow(dead_code)]

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use seedbank_blobstore::{Config, Store};
use seedbank_files::{Files, Profile};
use seedbank_index::{Index, IndexConfig};
use serde::Deserialize;
use tokio::io::{AsyncRead, ReadBuf};

#[derive(Debug, Deserialize)]
pub struct Expected {
    pub fixtures: Vec<Fixture>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Fixture {
    pub profile: String,
    pub name: String,
    pub source: String,
    pub content: Option<Content>,
    pub tree: Option<Tree>,
    pub cid: String,
    pub kind: String,
    /// Every entry the importer yielded for a tree: `root/...` paths and CIDs.
    pub entries: Option<Vec<TreeEntryCid>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TreeEntryCid {
    pub path: String,
    pub cid: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Content {
    pub fill: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub seed: u32,
    pub text: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Tree {
    pub entries: Option<Vec<TreeEntry>>,
    pub flat: Option<Flat>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TreeEntry {
    pub path: String,
    pub content: Option<Content>,
    #[serde(default)]
    pub dir: bool,
    pub symlink: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Flat {
    pub count: usize,
    pub name_len: usize,
    pub last_name_len: usize,
}

impl Fixture {
    pub fn profile(&self) -> Profile {
        self.profile.parse().unwrap()
    }
}

pub fn expected() -> Expected {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/unixfs/expected.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub fn fixtures(profile: &str) -> Vec<Fixture> {
    expected()
        .fixtures
        .into_iter()
        .filter(|f| f.profile == profile)
        .collect()
}

impl Content {
    pub fn len(&self) -> u64 {
        match &self.text {
            Some(t) => t.len() as u64,
            None => self.size,
        }
    }

    /// The described bytes as a reader (generated as read: nothing is held).
    pub fn reader(&self) -> ContentReader {
        ContentReader {
            fill: self.clone(),
            pos: 0,
            state: self.seed,
            word: [0; 4],
        }
    }

    /// The described bytes in memory (small contents only).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() as usize);
        let mut r = self.reader();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.fill(&mut buf);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// Generates a [`Content`]'s bytes: zeros, text, or xorshift32 (13/17/5) from the seed,
/// each new state as 4 little-endian bytes.
pub struct ContentReader {
    fill: Content,
    pos: u64,
    state: u32,
    word: [u8; 4],
}

impl ContentReader {
    pub fn fill(&mut self, buf: &mut [u8]) -> usize {
        let left = self.fill.len() - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        let out = &mut buf[..n];
        match self.fill.fill.as_str() {
            "zero" => out.fill(0),
            "text" => {
                let text = self.fill.text.as_deref().unwrap().as_bytes();
                out.copy_from_slice(&text[self.pos as usize..self.pos as usize + n]);
            }
            "random" => {
                for (i, b) in out.iter_mut().enumerate() {
                    let at = self.pos + i as u64;
                    if at.is_multiple_of(4) {
                        let mut x = self.state;
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        self.state = x;
                        self.word = x.to_le_bytes();
                    }
                    *b = self.word[(at % 4) as usize];
                }
            }
            other => panic!("unknown fill {other}"),
        }
        self.pos += n as u64;
        n
    }
}

impl AsyncRead for ContentReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Tree {
    /// The tree's entries (a `flat` tree spelled out: files named by their zero-padded
    /// index, each holding its own name).
    pub fn entries(&self) -> Vec<TreeEntry> {
        if let Some(entries) = &self.entries {
            return entries.clone();
        }
        let flat = self.flat.as_ref().unwrap();
        (0..flat.count)
            .map(|i| {
                let width = if i == flat.count - 1 {
                    flat.last_name_len
                } else {
                    flat.name_len
                };
                let name = format!("{i:0width$}");
                TreeEntry {
                    path: name.clone(),
                    content: Some(Content {
                        fill: "text".into(),
                        size: 0,
                        seed: 0,
                        text: Some(name),
                    }),
                    dir: false,
                    symlink: None,
                }
            })
            .collect()
    }

    /// Writes the tree under `root` (created).
    pub fn materialize(&self, root: &Path) {
        std::fs::create_dir_all(root).unwrap();
        for e in self.entries() {
            let path = root.join(&e.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            if e.dir {
                std::fs::create_dir_all(&path).unwrap();
            } else if let Some(target) = &e.symlink {
                std::os::unix::fs::symlink(target, &path).unwrap();
            } else {
                std::fs::write(&path, e.content.as_ref().unwrap().bytes()).unwrap();
            }
        }
    }
}

/// A fresh store with its index, in `dir`.
pub async fn files_in(dir: &Path) -> Files {
    let store = Store::open(dir.join("files.db"), Config::default()).unwrap();
    Files::new(Index::open(store, IndexConfig::default()).await.unwrap())
}

/// Reads a whole file through `cat`.
pub async fn cat_all(files: &Files, cid: &cid::Cid) -> Vec<u8> {
    read_range(files, cid, 0, None).await
}

pub async fn read_range(files: &Files, cid: &cid::Cid, offset: u64, len: Option<u64>) -> Vec<u8> {
    let mut reader = files.cat(cid, offset, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        out.extend_from_slice(&chunk);
    }
    out
}

//! The write operations of the command line, as values, and [`execute`]: the one place they
//! run, whether the command opened the database itself or a running node received them
//! over its control socket. Their results are plain values the command prints, so the
//! output is the same either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use seedbank_blobstore::{codec, Blob, Priority, PutOptions};
use seedbank_files::{AddOptions, Profile, ProgressFn};
use seedbank_index::{DeleteOptions, GcOptions, IndexPutOptions};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::Node;

/// One input of `put` or `add`: a file (or directory) path, or standard input.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// A path: `open` is what is opened (absolute when sent to a node, whose working
    /// directory is not the command's), `shown` how the user typed it (for messages).
    Path {
        /// The path to open.
        open: PathBuf,
        /// The path as given.
        shown: PathBuf,
    },
    /// Standard input (`-`): the command's, streamed to the node in bounded chunks.
    Stdin,
}

impl Input {
    /// `-` is standard input; any other path is opened as given.
    pub fn from_arg(arg: &Path) -> Input {
        if arg.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::Path {
                open: arg.to_path_buf(),
                shown: arg.to_path_buf(),
            }
        }
    }

    /// The same input with its path made absolute against `cwd` (to send to a node).
    pub fn absolute(self, cwd: &Path) -> Input {
        match self {
            Input::Path { open, shown } => Input::Path {
                open: cwd.join(open),
                shown,
            },
            Input::Stdin => Input::Stdin,
        }
    }

    fn shown(&self) -> String {
        match self {
            Input::Path { shown, .. } => shown.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }
}

/// A write operation of the command line.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `put FILE...`: raw blobs, every input read before anything is stored.
    Put {
        /// The inputs.
        inputs: Vec<Input>,
    },
    /// `add PATH`: one file or directory as UnixFS.
    Add {
        /// The input.
        input: Input,
        /// The CID profile's name.
        profile: String,
        /// Pin the root under this name.
        pin: Option<String>,
        /// Include hidden entries of directories.
        hidden: bool,
    },
    /// `import FILE.car`.
    Import {
        /// The CAR file (never standard input).
        file: Input,
    },
    /// `pin NAME ROOT`.
    Pin {
        /// The pin's name.
        name: String,
        /// The root CID, as text.
        root: String,
    },
    /// `unpin NAME`.
    Unpin {
        /// The pin's name.
        name: String,
    },
    /// `delete CID... [--force]`.
    Delete {
        /// The CIDs, as text.
        cids: Vec<String>,
        /// Delete pinned blobs too.
        force: bool,
    },
    /// `gc [--dry-run]`.
    Gc {
        /// Count only.
        dry_run: bool,
    },
    /// `backup DEST`.
    Backup {
        /// The destination (must not exist).
        dest: Input,
    },
}

impl Op {
    /// True when the operation reads standard input.
    pub fn reads_stdin(&self) -> bool {
        match self {
            Op::Put { inputs } => inputs.contains(&Input::Stdin),
            Op::Add { input, .. } => *input == Input::Stdin,
            _ => false,
        }
    }

    /// The same operation with every path absolute against `cwd`.
    pub fn absolute(self, cwd: &Path) -> Op {
        match self {
            Op::Put { inputs } => Op::Put {
                inputs: inputs.into_iter().map(|i| i.absolute(cwd)).collect(),
            },
            Op::Add {
                input,
                profile,
                pin,
                hidden,
            } => Op::Add {
                input: input.absolute(cwd),
                profile,
                pin,
                hidden,
            },
            Op::Import { file } => Op::Import {
                file: file.absolute(cwd),
            },
            Op::Backup { dest } => Op::Backup {
                dest: dest.absolute(cwd),
            },
            op => op,
        }
    }

    /// `(opened, shown)` for each path of the operation (to say paths as typed in errors).
    pub fn paths(&self) -> Vec<(PathBuf, PathBuf)> {
        let inputs: Vec<&Input> = match self {
            Op::Put { inputs } => inputs.iter().collect(),
            Op::Add { input, .. } => vec![input],
            Op::Import { file } => vec![file],
            Op::Backup { dest } => vec![dest],
            _ => Vec::new(),
        };
        inputs
            .into_iter()
            .filter_map(|i| match i {
                Input::Path { open, shown } => Some((open.clone(), shown.clone())),
                Input::Stdin => None,
            })
            .collect()
    }
}

/// One entry an `add` stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddedRow {
    /// Its CID, as text.
    pub cid: String,
    /// Its path relative to the input, `/`-separated; `""` for the input itself.
    pub path: String,
    /// `file`, `directory` or `symlink`.
    pub kind: String,
    /// Its cumulative size.
    pub dag_size: u64,
}

/// What an `import` stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Imported {
    /// CAR version (1 or 2).
    pub version: u64,
    /// Blocks read and stored.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The roots of the header, as text.
    pub roots: Vec<String>,
    /// Blocks referenced under the roots and not stored.
    pub missing: u64,
    /// False when `missing` is a lower bound.
    pub missing_complete: bool,
}

/// What a `gc` did (the figures the command prints).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Collected {
    /// Nothing was deleted (a dry run).
    pub dry_run: bool,
    /// Blobs freed (would be, in a dry run).
    pub blobs_freed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Blobs the mark reached.
    pub marked: u64,
    /// Candidates kept because they became live during the sweep.
    pub kept_late: u64,
    /// Of those, by a put.
    pub kept_late_puts: u64,
    /// Of those, by a pin.
    pub kept_late_pins: u64,
    /// Of those, by a temp pin.
    pub kept_late_temp_pins: u64,
    /// Sweep batches.
    pub batches: u64,
    /// Free pages left.
    pub free_pages: u64,
}

/// The result of an [`Op`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// `put`: the CIDs, in input order.
    Put {
        /// The CIDs, as text.
        cids: Vec<String>,
    },
    /// `add`: every entry, children before their directory, the root last.
    Added {
        /// The entries.
        entries: Vec<AddedRow>,
    },
    /// `import`.
    Imported(Imported),
    /// `pin`.
    Pinned,
    /// `unpin`: whether there was such a pin.
    Unpinned {
        /// There was a pin of that name.
        existed: bool,
    },
    /// `delete`: what was freed.
    Deleted {
        /// Blobs.
        blobs: u64,
        /// Bytes.
        bytes: u64,
    },
    /// `gc`.
    Collected(Collected),
    /// `backup`: what was written and checked.
    BackedUp {
        /// Size of the copy.
        bytes: u64,
        /// CIDs it holds.
        cids: u64,
    },
}

/// Why an [`Op`] failed. Messages name paths as the user typed them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// A file (or standard input) could not be read.
    #[error("cannot read {what}")]
    Read {
        /// The path as given, or `standard input`.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `put` input is over the store's blob limit.
    #[error(
        "{path}: blob of {size} bytes exceeds the limit of {max} bytes (`seedbank add` takes files of any size)"
    )]
    TooLarge {
        /// The path as given.
        path: String,
        /// Its size, or `more than MAX` for a stream.
        size: String,
        /// The limit.
        max: usize,
    },
    /// `add` of one input failed.
    #[error("cannot add {path}")]
    Add {
        /// The path as given.
        path: String,
        /// The cause.
        #[source]
        source: Box<crate::Error>,
    },
    /// The CAR file could not be opened.
    #[error("cannot open {path}")]
    Open {
        /// The path as given.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The import failed.
    #[error("import of {path} failed")]
    Import {
        /// The path as given.
        path: String,
        /// The cause.
        #[source]
        source: Box<crate::Error>,
    },
    /// A CID argument does not parse.
    #[error("invalid CID {0:?}")]
    Cid(String, #[source] cid::Error),
    /// An unknown CID profile.
    #[error("{0}")]
    Profile(#[source] seedbank_files::Error),
    /// The node's own error.
    #[error(transparent)]
    Node(Box<crate::Error>),
}

impl From<crate::Error> for OpError {
    fn from(e: crate::Error) -> Self {
        OpError::Node(Box::new(e))
    }
}

/// What an operation may use beside the node: standard input (for `put -` and `add -`)
/// and a progress callback (`add` reports file bytes read).
#[derive(Default)]
pub struct OpIo {
    /// Standard input: the process's own, or the stream a control client sends.
    pub stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    /// Called with bytes read as an `add` goes.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for OpIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpIo")
            .field("stdin", &self.stdin.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Runs `op` on `node` through its methods: the same code whether the command line opened
/// the database itself or a running node received `op` on its control socket.
///
/// # Errors
/// [`OpError`], its messages as the command line prints them.
pub async fn execute(node: &Node, op: Op, mut io: OpIo) -> Result<Reply, OpError> {
    match op {
        Op::Put { inputs } => {
            let max = node.store().config().max_blob_size;
            let mut blobs = Vec::with_capacity(inputs.len());
            for input in &inputs {
                blobs.push(Blob::new(
                    codec::RAW,
                    read_blob_input(input, max, &mut io).await?,
                ));
            }
            let opts = IndexPutOptions::new(Priority::Interactive, "cli");
            let cids = node.put_many(blobs, opts).await?;
            Ok(Reply::Put {
                cids: cids.iter().map(ToString::to_string).collect(),
            })
        }
        Op::Add {
            input,
            profile,
            pin,
            hidden,
        } => {
            let profile: Profile = profile.parse().map_err(OpError::Profile)?;
            let mut opts = AddOptions::new(profile);
            opts.pin = pin;
            opts.hidden = hidden;
            opts.put = PutOptions::new(Priority::Normal, "cli:add");
            opts.progress = io.progress.clone();
            let added = match &input {
                Input::Stdin => {
                    let stdin = io
                        .stdin
                        .take()
                        .unwrap_or_else(|| Box::new(tokio::io::empty()));
                    node.add_reader(stdin, &opts).await
                }
                Input::Path { open, .. } => node.add(open, &opts).await,
            }
            .map_err(|source| OpError::Add {
                path: input.shown(),
                source: Box::new(source),
            })?;
            Ok(Reply::Added {
                entries: added
                    .entries
                    .iter()
                    .map(|e| AddedRow {
                        cid: e.cid.to_string(),
                        path: e.path.clone(),
                        kind: e.kind.name().to_string(),
                        dag_size: e.dag_size,
                    })
                    .collect(),
            })
        }
        Op::Import { file } => {
            let (open, shown) = match &file {
                Input::Path { open, .. } => (open.clone(), file.shown()),
                Input::Stdin => (PathBuf::from("-"), file.shown()),
            };
            let reader = tokio::fs::File::open(&open)
                .await
                .map_err(|source| OpError::Open {
                    path: shown.clone(),
                    source,
                })?;
            let report = node
                .import_car(tokio::io::BufReader::new(reader))
                .await
                .map_err(|source| OpError::Import {
                    path: shown,
                    source: Box::new(source),
                })?;
            Ok(Reply::Imported(Imported {
                version: report.version,
                blocks: report.blocks,
                bytes: report.bytes,
                roots: report.roots.iter().map(ToString::to_string).collect(),
                missing: report.missing,
                missing_complete: report.missing_complete,
            }))
        }
        Op::Pin { name, root } => {
            node.pin(&name, &parse_cid(&root)?).await?;
            Ok(Reply::Pinned)
        }
        Op::Unpin { name } => Ok(Reply::Unpinned {
            existed: node.unpin(&name).await?,
        }),
        Op::Delete { cids, force } => {
            let cids = cids
                .iter()
                .map(|c| parse_cid(c))
                .collect::<Result<Vec<_>, _>>()?;
            let opts = if force {
                DeleteOptions::forced()
            } else {
                DeleteOptions::default()
            };
            let freed = node.delete(&cids, opts).await?;
            Ok(Reply::Deleted {
                blobs: freed.blobs,
                bytes: freed.bytes,
            })
        }
        Op::Gc { dry_run } => {
            let opts = GcOptions {
                dry_run,
                ..Default::default()
            };
            let r = node.gc(opts).await?;
            Ok(Reply::Collected(Collected {
                dry_run: r.dry_run,
                blobs_freed: r.blobs_freed,
                bytes_freed: r.bytes_freed,
                marked: r.marked,
                kept_late: r.kept_late,
                kept_late_puts: r.kept_late_by.puts,
                kept_late_pins: r.kept_late_by.pins,
                kept_late_temp_pins: r.kept_late_by.temp_pins,
                batches: r.batches,
                free_pages: r.free_pages,
            }))
        }
        Op::Backup { dest } => {
            let path = match &dest {
                Input::Path { open, .. } => open.clone(),
                Input::Stdin => PathBuf::from("-"),
            };
            let r = node.backup(&path).await?;
            Ok(Reply::BackedUp {
                bytes: r.bytes,
                cids: r.cids,
            })
        }
    }
}

/// Parses a CID argument with a message naming it.
fn parse_cid(s: &str) -> Result<cid::Cid, OpError> {
    cid::Cid::try_from(s).map_err(|e| OpError::Cid(s.to_string(), e))
}

/// The bytes of one `put` input, refused before it is read whole when it is over the
/// store's blob limit: reading never holds more than `max` + 1 bytes.
async fn read_blob_input(input: &Input, max: usize, io: &mut OpIo) -> Result<Vec<u8>, OpError> {
    let too_large = |size: String| OpError::TooLarge {
        path: input.shown(),
        size,
        max,
    };
    let mut data = Vec::new();
    let limit = max as u64 + 1;
    match input {
        Input::Stdin => {
            // A second `-` reads what the first left: nothing.
            if let Some(stdin) = io.stdin.as_mut() {
                stdin
                    .take(limit)
                    .read_to_end(&mut data)
                    .await
                    .map_err(|source| OpError::Read {
                        what: "standard input".into(),
                        source,
                    })?;
            }
        }
        Input::Path { open, shown } => {
            let read_error = |source| OpError::Read {
                what: shown.display().to_string(),
                source,
            };
            let file = tokio::fs::File::open(open).await.map_err(read_error)?;
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            if len > max as u64 {
                return Err(too_large(len.to_string()));
            }
            file.take(limit)
                .read_to_end(&mut data)
                .await
                .map_err(read_error)?;
        }
    }
    if data.len() > max {
        return Err(too_large(format!("more than {max}")));
    }
    Ok(data)
}

/// `e` and its causes, `: `-separated (what `{:#}` of an `anyhow::Error` prints).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A progress callback that adds to a shared counter (for the control server).
pub(crate) fn counting(counter: Arc<std::sync::atomic::AtomicU64>) -> ProgressFn {
    Arc::new(move |n| {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
}

//! Where a write command runs: on the database it opens itself, or — when a node already
//! owns the database (`seedbank serve`) and answers on `<db>.sock` — on that node, through
//! its control socket. Either way the command's operation runs through
//! `seedbank::control::execute` and the command prints its reply, so output and exit codes
//! are the same.

use std::path::{Path, PathBuf};

use anyhow::Context;
use seedbank::blobstore::Error as StoreError;
use seedbank::control::{self, CallError, Op, OpIo, Reply};
use seedbank::files::ProgressFn;
use seedbank::{Node, NodeOptions};

/// The node a write command talks to (cheap to clone).
#[derive(Clone)]
pub enum Target {
    /// The command opened the database itself.
    Local(Node),
    /// A running node owns it; requests go to its control socket.
    Remote(PathBuf),
}

impl Target {
    /// Opens `db` for writing; when another store owns it and a node answers on its
    /// control socket, that node is the target. Otherwise the open's error, as before.
    pub async fn open(db: &Path) -> anyhow::Result<Target> {
        match Node::open(db, NodeOptions::default()).await {
            Ok(node) => Ok(Target::Local(node)),
            Err(seedbank::Error::Blobstore(e @ StoreError::Locked { .. })) => {
                if control::answers(db).await {
                    Ok(Target::Remote(db.to_path_buf()))
                } else {
                    Err(anyhow::Error::from(e).context("cannot open the database"))
                }
            }
            Err(e @ seedbank::Error::Blobstore(_)) => {
                Err(anyhow::Error::from(e).context("cannot open the database"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// For `backup`, a read: the running node when one answers on the control socket,
    /// else the database opened read-only (as every read command does).
    pub async fn open_for_backup(db: &Path) -> anyhow::Result<Target> {
        if control::answers(db).await {
            return Ok(Target::Remote(db.to_path_buf()));
        }
        let node = Node::open_read_only(db, NodeOptions::default()).await;
        match node {
            Ok(node) => Ok(Target::Local(node)),
            Err(e @ seedbank::Error::Blobstore(_)) => {
                Err(anyhow::Error::from(e).context("cannot open the database"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op` here or on the node. `progress` gets bytes read (`add`).
    pub async fn run(&self, op: Op, progress: Option<ProgressFn>) -> anyhow::Result<Reply> {
        let stdin = op
            .reads_stdin()
            .then(|| Box::new(tokio::io::stdin()) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        match self {
            Target::Local(node) => Ok(control::execute(node, op, OpIo { stdin, progress }).await?),
            Target::Remote(db) => {
                let cwd = std::env::current_dir().context("cannot read the working directory")?;
                let op = op.absolute(&cwd);
                let paths = op.paths();
                match control::request(db, op, stdin, progress).await {
                    Ok(reply) => Ok(reply),
                    // The node opened absolute paths: say them as the user typed them.
                    Err(CallError::Failed(mut message)) => {
                        for (open, shown) in paths {
                            message = message
                                .replace(&open.display().to_string(), &shown.display().to_string());
                        }
                        Err(anyhow::anyhow!(message))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Closes the database when the command opened it (drains the lane, checkpoints).
    pub async fn close(self) -> anyhow::Result<()> {
        if let Target::Local(node) = self {
            node.close().await?;
        }
        Ok(())
    }
}

/// Opens the target, runs `f` on it, closes it, and returns `f`'s result (the close's
/// error when `f` succeeded but closing failed).
pub async fn with_target<T, F, Fut>(target: Target, f: F) -> anyhow::Result<T>
where
    F: FnOnce(Target) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let result = f(target.clone()).await;
    let closed = target.close().await;
    let value = result?;
    closed?;
    Ok(value)
}

/// `serve`: listens on `<db>.sock` for the write commands of other processes (a socket
/// left by a node that died is replaced; one that answers is an error).
#[cfg(unix)]
pub fn listen(node: &Node, db: &Path) -> anyhow::Result<Option<control::ControlServer>> {
    let path = control::socket_path(db);
    let server = node
        .control(&path, control::ControlConfig::default())
        .with_context(|| format!("cannot listen on the control socket {}", path.display()))?;
    Ok(Some(server))
}

/// `serve` elsewhere: no control socket, so write commands cannot reach the node.
#[cfg(not(unix))]
pub fn listen(_node: &Node, _db: &Path) -> anyhow::Result<Option<std::convert::Infallible>> {
    eprintln!(
        "seedbank: warning: no control socket on this platform (it needs Unix domain sockets): \
         write commands cannot reach this node while it runs"
    );
    Ok(None)
}

/// Stops listening on the control socket (requests in flight finish) and removes it.
#[cfg(unix)]
pub async fn stop_listening(server: Option<control::ControlServer>) {
    if let Some(server) = server {
        server.shutdown().await;
    }
}

/// Nothing listens here.
#[cfg(not(unix))]
pub async fn stop_listening(server: Option<std::convert::Infallible>) {
    if let Some(never) = server {
        match never {}
    }
}

/// A node answered an operation with another operation's reply.
pub fn unexpected(reply: Reply) -> anyhow::Error {
    anyhow::anyhow!("the node answered with an unexpected reply: {reply:?}")
}

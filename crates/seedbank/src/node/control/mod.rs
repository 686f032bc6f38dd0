//! The control socket (feature `control`): how the command line's write commands reach a
//! node that is running on their database.
//!
//! A running node owns its database for writing, so `put` or `gc` in another process
//! cannot open it. Instead the node listens on a Unix domain socket beside the database,
//! `<db>.sock` ([`socket_path`], mode 0600), and the command sends its [`Op`] there; the
//! node runs it with [`execute`] — the same function the command runs when it opens the
//! database itself — and sends back the [`Reply`] the command prints. So output and exit
//! codes are the same either way.
//!
//! The protocol ([`wire`]) is length-prefixed JSON frames with a cap per direction, one
//! request per connection, and a bounded number of connections at once
//! ([`ControlConfig::max_connections`]; past it a connection is answered "busy"). Files are
//! sent by path (the client and the node run on the same machine as the same user; the
//! node opens them); standard input is streamed in chunks of at most
//! [`wire::DATA_CHUNK`] bytes, a few of them buffered. Requests run on the node's runtime
//! beside its peers: serving goes on while they run.
//!
//! Unix only: elsewhere [`Node::control`] refuses with [`std::io::ErrorKind::Unsupported`].

#[cfg(unix)]
mod client;
mod ops;
#[cfg(unix)]
mod server;
pub mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(unix)]
pub use client::{answers, request};
pub use ops::{chain, execute, AddedRow, Collected, Imported, Input, Op, OpError, OpIo, Reply};
#[cfg(unix)]
pub use server::ControlServer;

use crate::Node;

/// Why [`request`] has no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Nothing answers on the socket (no socket file, or nobody listening on it).
    #[error("no node answers on {0}")]
    NoNode(String),
    /// The node ran the operation and it failed; the message is the node's, as the command
    /// line prints it.
    #[error("{0}")]
    Failed(String),
    /// The conversation with the node broke (it stopped, or spoke out of turn).
    #[error("control connection to the running node failed")]
    Io(#[source] std::io::Error),
}

/// No control sockets here: no node ever answers.
#[cfg(not(unix))]
pub async fn answers(_db: &Path) -> bool {
    false
}

/// No control sockets here: always [`CallError::NoNode`].
///
/// # Errors
/// Always [`CallError::NoNode`].
#[cfg(not(unix))]
pub async fn request(
    db: &Path,
    _op: Op,
    _stdin: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    _progress: Option<seedbank_files::ProgressFn>,
) -> Result<Reply, CallError> {
    Err(CallError::NoNode(socket_path(db).display().to_string()))
}

/// `<db>.sock`: where the node running on `db` listens for commands.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".sock");
    PathBuf::from(name)
}

/// How [`Node::control`] serves. Start from [`ControlConfig::default`].
#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// Control connections served at once (default 8); past it a connection is answered
    /// "busy" and closed.
    pub max_connections: usize,
    /// At shutdown, longest wait for requests in flight (default 30 s); past it they are
    /// cancelled (a write already committed stays).
    pub shutdown_grace: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            max_connections: 8,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl Node {
    /// Listens on `socket` (usually [`socket_path`] of the database) for commands until
    /// [`ControlServer::shutdown`]. A socket file nothing answers on (a node that died) is
    /// replaced; one that answers is an error.
    ///
    /// # Errors
    /// `AddrInUse` when a node answers on `socket`, `AlreadyExists` when it is a file that
    /// is not a socket, and the errors of binding it.
    #[cfg(unix)]
    pub fn control(
        &self,
        socket: impl Into<PathBuf>,
        config: ControlConfig,
    ) -> std::io::Result<ControlServer> {
        server::spawn(self.clone(), socket.into(), config)
    }

    /// Control sockets are Unix domain sockets: this platform has none.
    ///
    /// # Errors
    /// Always `Unsupported`.
    #[cfg(not(unix))]
    pub fn control(
        &self,
        socket: impl Into<PathBuf>,
        config: ControlConfig,
    ) -> std::io::Result<std::convert::Infallible> {
        let _ = (socket.into(), config);
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the control socket needs Unix domain sockets (not available on this platform)",
        ))
    }
}

//! The control socket's client: sends one operation to the node running on a database and
//! waits for its result.

use std::io;
use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UnixStream;

use super::ops::{Op, Reply};
use super::wire::{self, Request, ServerMsg, DATA_CHUNK, K_DATA, K_END, MAX_REPLY, VERSION};
use super::CallError;
use seedbank_files::ProgressFn;

/// True when a node answers on the control socket of `db` (it accepts a connection).
pub async fn answers(db: &Path) -> bool {
    connect(db).await.is_ok()
}

/// Sends `op` to the node running on `db` and returns its result. When `op` reads
/// standard input, `stdin` is sent in chunks of at most
/// [`DATA_CHUNK`](super::wire::DATA_CHUNK) bytes while the node works; `progress` gets the
/// node's progress reports.
///
/// Paths in `op` are opened by the node: make them absolute first ([`Op::absolute`]).
///
/// # Errors
/// [`CallError::NoNode`] when nothing answers on `<db>.sock`, [`CallError::Failed`] when
/// the operation failed on the node, [`CallError::Io`] when the connection broke.
pub async fn request(
    db: &Path,
    op: Op,
    stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    progress: Option<ProgressFn>,
) -> Result<Reply, CallError> {
    call(connect(db).await?, op, stdin, progress).await
}

async fn connect(db: &Path) -> Result<UnixStream, CallError> {
    let path = super::socket_path(db);
    UnixStream::connect(&path).await.map_err(|e| {
        tracing::debug!("control socket {}: {e}", path.display());
        CallError::NoNode(path.display().to_string())
    })
}

async fn call(
    stream: UnixStream,
    op: Op,
    stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    progress: Option<ProgressFn>,
) -> Result<Reply, CallError> {
    let (mut read, mut write) = stream.into_split();
    let sends_stdin = op.reads_stdin();
    wire::write_json(&mut write, &Request { v: VERSION, op })
        .await
        .map_err(CallError::Io)?;
    let pump = match (sends_stdin, stdin) {
        (true, Some(mut stdin)) => Some(tokio::spawn(async move {
            let mut buf = vec![0u8; DATA_CHUNK];
            loop {
                let n = stdin.read(&mut buf).await?;
                if n == 0 {
                    return wire::write_frame(&mut write, K_END, &[]).await;
                }
                wire::write_frame(&mut write, K_DATA, &buf[..n]).await?;
            }
        })),
        (true, None) => {
            wire::write_frame(&mut write, K_END, &[])
                .await
                .map_err(CallError::Io)?;
            None
        }
        _ => None,
    };
    let result = loop {
        let frame = wire::read_frame(&mut read, MAX_REPLY).await;
        let msg: ServerMsg = match frame {
            Ok(Some((kind, body))) => match wire::decode(kind, &body) {
                Ok(msg) => msg,
                Err(e) => break Err(CallError::Io(e)),
            },
            Ok(None) => {
                break Err(CallError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the node closed the connection without an answer",
                )))
            }
            Err(e) => break Err(CallError::Io(e)),
        };
        match msg {
            ServerMsg::Progress { bytes } => {
                if let Some(p) = &progress {
                    p(bytes);
                }
            }
            ServerMsg::Done { reply } => break Ok(reply),
            ServerMsg::Failed { message } => break Err(CallError::Failed(message)),
        }
    };
    // The node answered: what is left of standard input is not needed (a too-large `put -`
    // is refused before it is read whole).
    if let Some(pump) = pump {
        pump.abort();
    }
    result
}

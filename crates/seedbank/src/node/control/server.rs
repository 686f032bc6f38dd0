//! The control socket's server: accepts local connections, runs each request through
//! [`execute`] on the node, answers, and removes its socket at shutdown.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::ops::{chain, counting, execute, OpIo};
use super::wire::{self, Request, ServerMsg, DATA_CHUNK, K_DATA, K_END, MAX_REQUEST, VERSION};
use super::ControlConfig;
use crate::Node;

/// A node's control socket being served. [`ControlServer::shutdown`] stops it and removes
/// the socket.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    ident: Ident,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    grace: Duration,
}

impl ControlServer {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, lets requests in flight finish (up to the configured grace; past it
    /// they are cancelled), and removes the socket file if it is still the one bound.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(self.grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        remove_if_ours(&self.path, self.ident);
    }
}

/// The socket file as bound: removed at shutdown only while it is still this file; its
/// owner (this process's user) is the only user whose connections are served.
#[derive(Clone, Copy, Debug)]
struct Ident {
    dev: u64,
    ino: u64,
    uid: u32,
}

fn remove_if_ours(path: &Path, ident: Ident) {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if (meta.dev(), meta.ino()) == (ident.dev, ident.ino) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds `path`: a socket file left by a node that is gone (nothing answers on it) is
/// replaced; one that answers, or a file that is not a socket, is an error. The socket is
/// made in a private directory, given mode 0600 and renamed into place, so no other user
/// can connect to it at any moment.
fn bind(path: &Path) -> io::Result<(UnixListener, Ident)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("a node already answers on {}", path.display()),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!("removing stale control socket {}", path.display());
                    std::fs::remove_file(path)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = tempfile::Builder::new()
        .prefix(".seedbank-sock")
        .tempdir_in(parent)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    let tmp = dir.path().join("s");
    let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    // Fails if something took `path` since the check: never replaced silently.
    std::fs::hard_link(&tmp, path)?;
    let meta = std::fs::symlink_metadata(path)?;
    drop(dir);
    listener.set_nonblocking(true)?;
    let ident = Ident {
        dev: meta.dev(),
        ino: meta.ino(),
        uid: meta.uid(),
    };
    Ok((UnixListener::from_std(listener)?, ident))
}

/// Serves `node` on `path` (see [`Node::control`]).
pub(super) fn spawn(node: Node, path: PathBuf, config: ControlConfig) -> io::Result<ControlServer> {
    let (listener, ident) = bind(&path)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let grace = config.shutdown_grace;
    let task = tokio::spawn(accept_loop(node, listener, config, ident.uid, stopped));
    Ok(ControlServer {
        path,
        ident,
        stop,
        task,
        grace,
    })
}

async fn accept_loop(
    node: Node,
    listener: UnixListener,
    config: ControlConfig,
    me: u32,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors, say: back off instead of spinning.
                        tracing::warn!("control socket: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Mode 0600 keeps other users out; this keeps out anyone who got in anyway
                // (another user's root process excepted).
                if let Ok(cred) = stream.peer_cred() {
                    if cred.uid() != me && cred.uid() != 0 {
                        continue;
                    }
                }
                let permit = slots.clone().try_acquire_owned().ok();
                let node = node.clone();
                let max = config.max_connections;
                conns.spawn(async move {
                    match permit {
                        Some(permit) => serve_conn(&node, stream, permit).await,
                        None => refuse(stream, max).await,
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn refuse(stream: UnixStream, max: usize) {
    let (_, mut write) = stream.into_split();
    let msg = ServerMsg::Failed {
        message: format!("the node is busy: {max} control connections at once"),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), wire::write_json(&mut write, &msg)).await;
}

/// Serves one connection. Its slot (`permit`) is given back before the last message is
/// written, so a client that has its answer can count on the slot being free again.
async fn serve_conn(node: &Node, stream: UnixStream, permit: OwnedSemaphorePermit) {
    let (mut read, mut write) = stream.into_split();
    let request = tokio::time::timeout(
        Duration::from_secs(30),
        wire::read_frame(&mut read, MAX_REQUEST),
    )
    .await;
    let request: io::Result<Request> = match request {
        Ok(Ok(Some((kind, body)))) => wire::decode(kind, &body),
        Ok(Ok(None)) => return,
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no request")),
    };
    let request = match request {
        Ok(r) if r.v == VERSION => r,
        Ok(r) => {
            drop(permit);
            let message = format!("control protocol version {} is not {VERSION}", r.v);
            return failed(&mut write, message).await;
        }
        Err(e) => {
            drop(permit);
            return failed(&mut write, format!("bad control request: {e}")).await;
        }
    };
    let mut io = OpIo::default();
    let mut pump = None;
    if request.op.reads_stdin() {
        let (tx, rx) = mpsc::channel(4);
        io.stdin = Some(Box::new(ChannelReader {
            rx,
            buf: Bytes::new(),
        }));
        pump = Some(tokio::spawn(pump_stdin(read, tx)));
    }
    let progressed = Arc::new(AtomicU64::new(0));
    io.progress = Some(counting(progressed.clone()));
    let op = execute(node, request.op, io);
    tokio::pin!(op);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let result = loop {
        tokio::select! {
            result = &mut op => break result,
            _ = tick.tick() => {
                let bytes = progressed.swap(0, Relaxed);
                if bytes > 0 {
                    // A client that stopped reading only loses its progress.
                    let _ = wire::write_json(&mut write, &ServerMsg::Progress { bytes }).await;
                }
            }
        }
    };
    if let Some(pump) = pump {
        pump.abort();
    }
    let msg = match result {
        Ok(reply) => ServerMsg::Done { reply },
        Err(e) => ServerMsg::Failed { message: chain(&e) },
    };
    drop(permit);
    let _ = wire::write_json(&mut write, &msg).await;
}

async fn failed(write: &mut OwnedWriteHalf, message: String) {
    let _ = wire::write_json(write, &ServerMsg::Failed { message }).await;
}

/// Forwards the client's `DATA` frames to the operation's standard input. A connection
/// that ends before `END` is an error for the reader, never a short input.
async fn pump_stdin(mut read: OwnedReadHalf, tx: mpsc::Sender<io::Result<Bytes>>) {
    loop {
        let item = match wire::read_frame(&mut read, DATA_CHUNK).await {
            Ok(Some((K_DATA, body))) => Ok(Bytes::from(body)),
            Ok(Some((K_END, _))) => return,
            Ok(Some((kind, _))) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected control frame kind {kind} in standard input"),
            )),
            Ok(None) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client went away before the end of standard input",
            )),
            Err(e) => Err(e),
        };
        let stop = item.is_err();
        if tx.send(item).await.is_err() || stop {
            return;
        }
    }
}

/// Standard input from the client: chunks from [`pump_stdin`], at most a few buffered.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.buf.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                // The sender is gone after `END`: the end of input.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Ok(chunk))) => self.buf = chunk,
            }
        }
        let n = self.buf.len().min(out.remaining());
        let chunk = self.buf.split_to(n);
        out.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

//! Length-prefixed frames on a QUIC stream, with a hard size cap per frame kind checked
//! before a byte of the body is read or allocated.
//!
//! Header (6 bytes): `version: u8 | kind: u8 | body length: u32 big-endian`, then the body.
//! Every stream carries one request frame from the client and one response frame back.

use bytes::Bytes;
use iroh::endpoint::{ReadError, ReadExactError, RecvStream, SendStream, VarInt, WriteError};

use crate::protocol::Kind;

/// The framing version this build speaks (the ALPN carries it too).
pub const VERSION: u8 = 1;

/// Header size in bytes.
pub const HEADER_LEN: usize = 6;

/// Most bytes reserved up front when reading a body: the buffer grows only as bytes arrive,
/// so a length prefix alone never makes us allocate.
const INITIAL_CAPACITY: usize = 64 * 1024;

/// Stream error codes we reset or stop streams with.
pub(crate) mod code {
    /// The frame was malformed, of an unknown kind or version, or over its cap.
    pub const BAD_FRAME: u32 = 400;
    /// Connection refused: the remote endpoint is not on the allowlist.
    pub const NOT_ALLOWED: u32 = 403;
    /// The peer took too long.
    pub const TIMEOUT: u32 = 408;
    /// Connection refused, or request body not read: a connection or admission limit was
    /// reached (a request gets a `Busy` answer as well).
    pub const BUSY: u32 = 503;
}

/// What can go wrong reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream or connection failed (reset, lost, closed); iroh's error is the source.
    #[error("stream failed")]
    Stream(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The stream ended cleanly before a header.
    #[error("stream ended before a frame")]
    Eof,
    /// The peer speaks another framing version.
    #[error("unsupported frame version {0}")]
    Version(u8),
    /// A frame kind this side does not know, or not expected here.
    #[error("unexpected frame kind {0:#04x}")]
    Kind(u8),
    /// The length prefix is over the cap of its kind.
    #[error("frame of {len} bytes is over the {cap}-byte cap of {kind:?}")]
    TooBig {
        /// The frame's kind.
        kind: Kind,
        /// Its announced body length.
        len: usize,
        /// The cap of that kind.
        cap: usize,
    },
    /// The body ended before its announced length.
    #[error("frame truncated: {got} of {len} bytes")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        len: usize,
    },
}

impl FrameError {
    /// True when the peer sent something malformed (as opposed to a transport failure).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            FrameError::Version(_)
                | FrameError::Kind(_)
                | FrameError::TooBig { .. }
                | FrameError::Truncated { .. }
        )
    }
}

impl From<WriteError> for FrameError {
    fn from(e: WriteError) -> Self {
        FrameError::Stream(Box::new(e))
    }
}

impl From<ReadError> for FrameError {
    fn from(e: ReadError) -> Self {
        FrameError::Stream(Box::new(e))
    }
}

impl FrameError {
    /// A stream failure caused by `e`.
    pub fn stream(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        FrameError::Stream(Box::new(e))
    }
}

/// Writes one frame. The caller has kept `body` within its kind's cap.
pub async fn write(send: &mut SendStream, kind: Kind, body: &[u8]) -> Result<(), FrameError> {
    send.write_all(&header(kind, body.len())?).await?;
    send.write_all(body).await?;
    Ok(())
}

/// Writes one frame whose body is `parts` in order, handing the parts to QUIC without
/// copying them. The caller has kept their total within the kind's cap.
pub async fn write_parts(
    send: &mut SendStream,
    kind: Kind,
    parts: &mut [Bytes],
) -> Result<(), FrameError> {
    let len = parts.iter().map(Bytes::len).sum();
    send.write_all(&header(kind, len)?).await?;
    send.write_all_chunks(parts).await?;
    Ok(())
}

fn header(kind: Kind, len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    debug_assert!(len <= kind.cap(), "{kind:?} body over its cap");
    let wire_len = u32::try_from(len).map_err(|_| FrameError::TooBig {
        kind,
        len,
        cap: kind.cap(),
    })?;
    let mut header = [0u8; HEADER_LEN];
    header[0] = VERSION;
    header[1] = kind as u8;
    header[2..].copy_from_slice(&wire_len.to_be_bytes());
    Ok(header)
}

/// Reads one frame whose kind passes `accept`, checking the version and the kind's cap on
/// the header alone. On a malformed frame the stream is stopped so the peer stops sending.
pub async fn read(
    recv: &mut RecvStream,
    accept: impl Fn(Kind) -> bool,
) -> Result<(Kind, Bytes), FrameError> {
    let (kind, len) = read_header(recv, accept).await?;
    let body = read_body(recv, len).await?;
    Ok((kind, body))
}

/// Reads one frame header whose kind passes `accept`; returns the kind and the body
/// length, checked against the kind's cap. Nothing of the body is read, so a server can
/// decide whether to admit the request before it buffers a byte of it. On a malformed
/// header the stream is stopped.
pub async fn read_header(
    recv: &mut RecvStream,
    accept: impl Fn(Kind) -> bool,
) -> Result<(Kind, usize), FrameError> {
    let result = read_header_inner(recv, accept).await;
    stop_if_malformed(recv, result)
}

/// Reads a body of `len` bytes (as announced by [`read_header`]). The buffer grows only as
/// bytes arrive. On a truncated body the stream is stopped.
pub async fn read_body(recv: &mut RecvStream, len: usize) -> Result<Bytes, FrameError> {
    let result = read_body_inner(recv, len).await;
    stop_if_malformed(recv, result)
}

fn stop_if_malformed<T>(
    recv: &mut RecvStream,
    result: Result<T, FrameError>,
) -> Result<T, FrameError> {
    if let Err(e) = &result {
        if e.is_malformed() {
            let _ = recv.stop(VarInt::from_u32(code::BAD_FRAME));
        }
    }
    result
}

async fn read_header_inner(
    recv: &mut RecvStream,
    accept: impl Fn(Kind) -> bool,
) -> Result<(Kind, usize), FrameError> {
    let mut header = [0u8; HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Err(FrameError::Eof),
        Err(ReadExactError::FinishedEarly(got)) => {
            return Err(FrameError::Truncated {
                got,
                len: HEADER_LEN,
            })
        }
        Err(ReadExactError::ReadError(e)) => return Err(e.into()),
    }
    if header[0] != VERSION {
        return Err(FrameError::Version(header[0]));
    }
    let kind = Kind::from_u8(header[1])
        .filter(|k| accept(*k))
        .ok_or(FrameError::Kind(header[1]))?;
    let len = u32::from_be_bytes(header[2..].try_into().expect("4 bytes")) as usize;
    if len > kind.cap() {
        return Err(FrameError::TooBig {
            kind,
            len,
            cap: kind.cap(),
        });
    }
    Ok((kind, len))
}

async fn read_body_inner(recv: &mut RecvStream, len: usize) -> Result<Bytes, FrameError> {
    // Grown as bytes arrive, then handed out whole: a `Blobs` answer's blobs are slices of
    // it, not copies (the copies were an eighth of a sync client's CPU).
    let mut body = Vec::with_capacity(len.min(INITIAL_CAPACITY));
    while body.len() < len {
        match recv.read_chunk(len - body.len()).await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => {
                return Err(FrameError::Truncated {
                    got: body.len(),
                    len,
                })
            }
        }
    }
    Ok(Bytes::from(body))
}

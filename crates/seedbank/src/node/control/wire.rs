//! The control protocol's frames and messages.
//!
//! A frame is one kind byte, a big-endian `u32` length and that many bytes. The length is
//! checked against the reader's cap before anything is allocated, so a peer cannot make the
//! other side hold more than the cap.
//!
//! A connection carries one request: the client sends a [`Request`] (a `JSON` frame), then,
//! when the operation reads standard input, its bytes as `DATA` frames of at most
//! [`DATA_CHUNK`] bytes and an `END` frame. The server answers with `JSON` frames of
//! [`ServerMsg`]: any number of `Progress`, then one `Done` or `Failed`, and closes.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ops::{Op, Reply};

/// The protocol version a [`Request`] carries.
pub const VERSION: u32 = 1;

/// A JSON message ([`Request`] from the client, [`ServerMsg`] from the server).
pub const K_JSON: u8 = 1;
/// A chunk of the client's standard input.
pub const K_DATA: u8 = 2;
/// The end of the client's standard input.
pub const K_END: u8 = 3;

/// Most bytes of standard input in one `DATA` frame (a sender sends at most this).
pub const DATA_CHUNK: usize = 64 * 1024;
/// Most bytes of a request frame the server reads (a `put` of many paths, a `delete` of
/// many CIDs). Larger requests are refused before their body is read.
pub const MAX_REQUEST: usize = 16 << 20;
/// Most bytes of one server message the client reads (an `add` of a directory lists every
/// entry: about 150 bytes each).
pub const MAX_REPLY: usize = 64 << 20;

/// What the client asks.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// [`VERSION`].
    pub v: u32,
    /// The operation.
    pub op: Op,
}

/// What the server says.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Bytes of input read since the last progress message (`add`).
    Progress {
        /// The bytes.
        bytes: u64,
    },
    /// The operation succeeded.
    Done {
        /// Its result.
        reply: Reply,
    },
    /// The operation failed, or the request was refused.
    Failed {
        /// The error and its causes, `: `-separated, as the command line prints them.
        message: String,
    },
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    body: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    let mut header = [0u8; 5];
    header[0] = kind;
    header[1..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&header).await?;
    w.write_all(body).await?;
    w.flush().await
}

/// Writes `value` as a `JSON` frame.
pub async fn write_json<W: AsyncWrite + Unpin>(
    w: &mut W,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_frame(w, K_JSON, &body).await
}

/// Reads one frame of at most `cap` bytes: `Ok(None)` at a clean end of stream before a
/// frame starts.
///
/// # Errors
/// `InvalidData` for a frame over `cap` (its body is not read), `UnexpectedEof` for a frame
/// cut short, and the stream's own errors.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    cap: usize,
) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    let first = r.read(&mut header[..1]).await?;
    if first == 0 {
        return Ok(None);
    }
    r.read_exact(&mut header[1..]).await?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("control frame of {len} bytes is over the limit of {cap}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some((header[0], body)))
}

/// Decodes a `JSON` frame's body.
pub fn decode<T: serde::de::DeserializeOwned>(kind: u8, body: &[u8]) -> io::Result<T> {
    if kind != K_JSON {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected a JSON frame, got kind {kind}"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

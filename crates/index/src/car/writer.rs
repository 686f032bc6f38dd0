//! A streaming CARv1 writer.

use cid::Cid;
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use crate::error::{Error, Result};

#[derive(Serialize)]
struct Header<'a> {
    // Field order is DAG-CBOR's canonical key order (shorter keys first), as go-car writes.
    roots: &'a [Cid],
    version: u64,
}

/// Writes a CARv1: a header naming the roots, then one section per block.
#[derive(Debug)]
pub struct CarWriter<W: AsyncWrite + Unpin> {
    inner: BufWriter<W>,
    bytes: u64,
}

impl<W: AsyncWrite + Unpin> CarWriter<W> {
    /// Writes the CARv1 header with `roots` (may be empty).
    ///
    /// # Errors
    /// [`Error::Io`] if writing fails.
    pub async fn new(writer: W, roots: &[Cid]) -> Result<Self> {
        let header = serde_ipld_dagcbor::to_vec(&Header { roots, version: 1 })
            // Cannot fail for a list of CIDs; if it does, the encoder's error is kept inside
            // the I/O error (`get_ref`), not flattened to text.
            .map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let mut car = CarWriter {
            inner: BufWriter::new(writer),
            bytes: 0,
        };
        car.write_section(&[&header]).await?;
        Ok(car)
    }

    /// Appends one block.
    ///
    /// # Errors
    /// [`Error::Io`] if writing fails.
    pub async fn write_block(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        self.write_section(&[&cid.to_bytes(), data]).await
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the underlying writer.
    ///
    /// # Errors
    /// [`Error::Io`] if flushing fails.
    pub async fn finish(mut self) -> Result<W> {
        self.inner.flush().await?;
        Ok(self.inner.into_inner())
    }

    /// Writes a varint length and then `parts`.
    async fn write_section(&mut self, parts: &[&[u8]]) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut buf = unsigned_varint::encode::u64_buffer();
        let prefix = unsigned_varint::encode::u64(len as u64, &mut buf);
        self.inner.write_all(prefix).await?;
        for part in parts {
            self.inner.write_all(part).await?;
        }
        self.bytes += (prefix.len() + len) as u64;
        Ok(())
    }
}

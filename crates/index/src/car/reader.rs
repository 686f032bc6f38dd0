//! A streaming CAR reader (CARv1, and CARv2 by reading its inner CARv1 payload).
//!
//! Memory is bounded by one section: lengths are checked against limits before anything is
//! allocated, nothing is reserved at a size the input claims before those bytes arrive, and
//! bytes are pulled through a fixed-size buffer. Every error names the byte
//! offset, from the start of the file, of the header or section that is wrong. The reader
//! does not verify hashes; [`import`](super::import) does, block by block.
//!
//! Varints are decoded by `unsigned-varint` (minimal encodings only, as the CAR spec asks),
//! CIDs by `cid`, headers by `serde_ipld_dagcbor`. A CARv2 index is never read: every block
//! is verified anyway, and skipping it keeps the reader one-pass.

use bytes::Bytes;
use cid::Cid;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::error::{Error, Result};

/// Largest CAR header accepted, in bytes (go-car's limit is 32 MiB; a header is a list of
/// roots, and 4 MiB holds more than 100,000 of them).
pub const MAX_HEADER_BYTES: u64 = 4 * 1024 * 1024;

/// Longest CID a section may start with: version, codec and multihash code varints, a digest
/// length and a digest of at most 64 bytes.
pub const MAX_CID_BYTES: usize = 4 * 10 + 64;

/// Bytes of the CARv2 pragma (`0x0a` then DAG-CBOR `{"version": 2}`).
const V2_PRAGMA_LEN: u64 = 11;
/// Bytes of the fixed CARv2 header that follows the pragma.
const V2_HEADER_LEN: usize = 40;
/// Read buffer: large enough to amortise syscalls, small enough to keep memory flat.
const BUF_BYTES: usize = 64 * 1024;

/// One block read from a CAR, not yet verified against its CID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarBlock {
    /// The CID the section claims.
    pub cid: Cid,
    /// The block's bytes.
    pub data: Bytes,
    /// Byte offset of the section (its length varint) from the start of the file.
    pub offset: u64,
}

#[derive(Deserialize)]
struct RawHeader {
    version: u64,
    #[serde(default)]
    roots: Option<Roots>,
}

/// The header's roots, collected as they are decoded: a `Vec<Cid>` would reserve room for
/// the count the array claims (up to 1 MiB) before reading a single CID.
struct Roots(Vec<Cid>);

impl<'de> Deserialize<'de> for Roots {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Roots;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of CIDs")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Roots, A::Error> {
                let mut roots = Vec::new();
                while let Some(cid) = seq.next_element()? {
                    roots.push(cid);
                }
                Ok(Roots(roots))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// Reads a CAR one block at a time.
#[derive(Debug)]
pub struct CarReader<R> {
    inner: BufReader<R>,
    /// Bytes consumed from the start of the file.
    pos: u64,
    /// For CARv2: the offset where the CARv1 payload ends.
    end: Option<u64>,
    version: u64,
    roots: Vec<Cid>,
    max_section: u64,
    done: bool,
}

/// What went wrong where, as an [`Error::Car`].
fn corrupt(offset: u64, reason: impl Into<String>) -> Error {
    Error::Car {
        offset,
        reason: reason.into(),
        source: None,
    }
}

/// What went wrong where, as an [`Error::Car`] caused by a decoder's error.
pub(super) fn corrupt_caused(
    offset: u64,
    reason: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Car {
        offset,
        reason: reason.into(),
        source: Some(Box::new(source)),
    }
}

impl<R: AsyncRead + Unpin> CarReader<R> {
    /// Reads the header (CARv1, or the CARv2 pragma, header and inner CARv1 header).
    /// Sections longer than `max_section` bytes (CID included) are rejected.
    ///
    /// # Errors
    /// [`Error::Car`] for a malformed, oversized or truncated header or an unsupported
    /// version, [`Error::CarIo`] if the reader fails.
    pub async fn new(reader: R, max_section: usize) -> Result<Self> {
        let mut car = CarReader {
            inner: BufReader::with_capacity(BUF_BYTES, reader),
            pos: 0,
            end: None,
            version: 0,
            roots: Vec::new(),
            max_section: max_section as u64,
            done: false,
        };
        let header = car.read_header().await?;
        match header.version {
            1 => car.set_v1(0, header)?,
            2 => car.enter_v2().await?,
            v => return Err(corrupt(0, format!("unsupported CAR version {v}"))),
        }
        Ok(car)
    }

    /// 1 for CARv1, 2 for CARv2.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The roots named by the (inner CARv1) header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// Bytes consumed so far from the start of the file.
    pub fn offset(&self) -> u64 {
        self.pos
    }

    /// The next block, or `None` at the end of the data.
    ///
    /// A zero-length section followed only by zero bytes is end-of-data padding (as go-car's
    /// `ZeroLengthSectionAsEOF`); anything after it is corruption.
    ///
    /// # Errors
    /// [`Error::Car`] naming the section's offset if it is truncated, oversized, runs past a
    /// CARv2 payload or starts with an invalid CID; [`Error::CarIo`] if the reader fails.
    pub async fn next_block(&mut self) -> Result<Option<CarBlock>> {
        if self.done {
            return Ok(None);
        }
        let offset = self.pos;
        if self.end == Some(offset) {
            self.done = true;
            return Ok(None);
        }
        let Some(len) = self.read_varint("section length").await? else {
            return self.end_of_input(offset);
        };
        if len == 0 {
            self.skip_padding(offset).await?;
            return Ok(None);
        }
        if len > self.max_section {
            let max = self.max_section;
            return Err(corrupt(
                offset,
                format!("section length {len} exceeds the limit of {max} bytes"),
            ));
        }
        if let Some(end) = self.end.filter(|end| self.pos + len > *end) {
            return Err(corrupt(offset, format!("section of {len} bytes runs past the end of the CARv2 data payload at byte {end}")));
        }
        let section = Bytes::from(self.read_exact_or(offset, len, "section").await?);
        let mut cursor = std::io::Cursor::new(&section[..]);
        let cid = Cid::read_bytes(&mut cursor)
            .map_err(|e| corrupt_caused(offset, "section does not start with a valid CID", e))?;
        let data = section.slice(cursor.position() as usize..);
        Ok(Some(CarBlock { cid, data, offset }))
    }

    /// Clean end of input: fine for CARv1, truncation inside a CARv2 payload.
    fn end_of_input(&mut self, offset: u64) -> Result<Option<CarBlock>> {
        self.done = true;
        match self.end {
            Some(end) => Err(corrupt(
                offset,
                format!("file ends before the CARv2 data payload ends at byte {end}"),
            )),
            None => Ok(None),
        }
    }

    /// Consumes what follows a zero-length section, which must be zeros up to the end of the
    /// data (padding).
    async fn skip_padding(&mut self, offset: u64) -> Result<()> {
        self.done = true;
        let limit = self.end.map_or(u64::MAX, |end| end - self.pos);
        let mut rest = (&mut self.inner).take(limit);
        let mut buf = [0u8; 4096];
        loop {
            let n = rest.read(&mut buf).await.map_err(|source| Error::CarIo {
                offset: self.pos,
                source,
            })?;
            if n == 0 {
                return Ok(());
            }
            if buf[..n].iter().any(|b| *b != 0) {
                return Err(corrupt(offset, "zero-length section followed by more data"));
            }
            self.pos += n as u64;
        }
    }

    /// Reads one unsigned varint; `None` at a clean end of input (before its first byte).
    async fn read_varint(&mut self, what: &str) -> Result<Option<u64>> {
        let start = self.pos;
        let mut buf = [0u8; 10];
        for i in 0..buf.len() {
            let byte = match self.inner.read_u8().await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    if i == 0 {
                        return Ok(None);
                    }
                    return Err(corrupt(start, format!("truncated {what} varint")));
                }
                Err(source) => {
                    return Err(Error::CarIo {
                        offset: self.pos,
                        source,
                    })
                }
            };
            self.pos += 1;
            buf[i] = byte;
            if unsigned_varint::decode::is_last(byte) {
                let (n, _) = unsigned_varint::decode::u64(&buf[..=i])
                    .map_err(|e| corrupt_caused(start, format!("invalid {what} varint"), e))?;
                return Ok(Some(n));
            }
        }
        Err(corrupt(
            start,
            format!("{what} varint is longer than 10 bytes"),
        ))
    }

    /// Reads exactly `len` bytes of the header or section starting at `offset`.
    async fn read_exact_or(&mut self, offset: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        // `len` is the input's claim: reserve only what is already buffered, so a short
        // input cannot cost an allocation of the claimed size; the rest grows as it arrives.
        let have = self.inner.buffer().len() as u64;
        let mut buf = Vec::with_capacity(len.min(have) as usize);
        let got = (&mut self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .await
            .map_err(|source| Error::CarIo {
                offset: self.pos,
                source,
            })?;
        self.pos += got as u64;
        if (got as u64) < len {
            return Err(corrupt(
                offset,
                format!("truncated {what}: expected {len} bytes after its length, found {got}"),
            ));
        }
        buf.shrink_to_fit();
        Ok(buf)
    }

    /// Reads a length-prefixed DAG-CBOR header at the current position.
    async fn read_header(&mut self) -> Result<RawHeader> {
        let offset = self.pos;
        let len = self
            .read_varint("header length")
            .await?
            .ok_or_else(|| corrupt(offset, "empty input: no CAR header"))?;
        if len > MAX_HEADER_BYTES {
            return Err(corrupt(
                offset,
                format!("header length {len} exceeds the limit of {MAX_HEADER_BYTES} bytes"),
            ));
        }
        let bytes = self.read_exact_or(offset, len, "header").await?;
        serde_ipld_dagcbor::from_slice(&bytes)
            .map_err(|e| corrupt_caused(offset, "header is not a DAG-CBOR CAR header", e))
    }

    fn set_v1(&mut self, offset: u64, header: RawHeader) -> Result<()> {
        if header.version != 1 {
            return Err(corrupt(
                offset,
                format!(
                    "CARv2 payload holds a version {} header, expected 1",
                    header.version
                ),
            ));
        }
        self.roots = header
            .roots
            .ok_or_else(|| corrupt(offset, "CARv1 header has no roots"))?
            .0;
        if self.version == 0 {
            self.version = 1;
        }
        Ok(())
    }

    /// After the CARv2 pragma: reads the fixed header, skips to the data payload and reads
    /// its CARv1 header. The payload is then read like a CARv1 that ends at `data_offset +
    /// data_size`.
    async fn enter_v2(&mut self) -> Result<()> {
        if self.pos != V2_PRAGMA_LEN {
            return Err(corrupt(0, "CARv2 pragma has the wrong length"));
        }
        self.version = 2;
        let at = self.pos;
        let fixed = self
            .read_exact_or(at, V2_HEADER_LEN as u64, "CARv2 header")
            .await?;
        let word = |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().expect("8 bytes"));
        let (data_offset, data_size) = (word(16), word(24));
        let end = data_offset.checked_add(data_size);
        if data_offset < self.pos || end.is_none() {
            return Err(corrupt(
                at,
                format!("CARv2 data offset {data_offset} and size {data_size} are out of range"),
            ));
        }
        self.skip_to(data_offset).await?;
        self.end = end;
        let header = self.read_header().await?;
        if self.pos > data_offset + data_size {
            return Err(corrupt(
                data_offset,
                "CARv2 data payload is smaller than its header",
            ));
        }
        self.set_v1(data_offset, header)
    }

    /// Discards bytes up to absolute offset `to`.
    async fn skip_to(&mut self, to: u64) -> Result<()> {
        let want = to - self.pos;
        let skipped = tokio::io::copy(&mut (&mut self.inner).take(want), &mut tokio::io::sink())
            .await
            .map_err(|source| Error::CarIo {
                offset: self.pos,
                source,
            })?;
        self.pos += skipped;
        if skipped < want {
            return Err(corrupt(
                self.pos,
                format!("file ends before the CARv2 data payload at byte {to}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_varint_keeps_the_varint_decoders_error_as_its_source() {
        // A header length encoded in two bytes where one would do (not minimal).
        let err = CarReader::new(&[0x80u8, 0x00][..], 1 << 20)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Car { offset: 0, reason, .. } if reason == "invalid header length varint")
        );
        let source = std::error::Error::source(&err).expect("the varint error is kept");
        assert!(
            source
                .downcast_ref::<unsigned_varint::decode::Error>()
                .is_some(),
            "{source:?}"
        );
    }
}

//! The UnixFS `Data` message (the protobuf inside a dag-pb node's `Data` field).
//!
//! Encoded field by field in field-number order with proto2 optional semantics, exactly as
//! the reference importers write it: a field is present only when set, `blocksizes` is
//! repeated and not packed. Decoding accepts any valid encoding (unknown fields skipped,
//! packed `blocksizes` too) and never panics or allocates more than the input holds.

use bytes::Bytes;

/// `Data.Type`: what a dag-pb UnixFS node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // The spec's names: raw bytes, directory, file, metadata, symlink, HAMT shard.
pub enum DataType {
    Raw = 0,
    Directory = 1,
    File = 2,
    Metadata = 3,
    Symlink = 4,
    HamtShard = 5,
}

impl DataType {
    fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => DataType::Raw,
            1 => DataType::Directory,
            2 => DataType::File,
            3 => DataType::Metadata,
            4 => DataType::Symlink,
            5 => DataType::HamtShard,
            _ => return None,
        })
    }
}

/// A decoded or to-be-encoded `Data` message (mode and mtime are never written and are
/// skipped when read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// `Type`.
    pub kind: DataType,
    /// `Data`: a file's inline bytes, a symlink's target.
    pub data: Option<Bytes>,
    /// `filesize`: a file's total size.
    pub filesize: Option<u64>,
    /// `blocksizes`: the file bytes under each link, in order.
    pub blocksizes: Vec<u64>,
    /// `hashType` of a HAMT shard (0x22: murmur3-x64-64).
    pub hash_type: Option<u64>,
    /// `fanout` of a HAMT shard.
    pub fanout: Option<u64>,
}

impl Data {
    /// An empty message of `kind`.
    pub fn new(kind: DataType) -> Self {
        Data {
            kind,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
        }
    }

    /// Encodes the message as the reference importers do.
    pub fn encode(&self) -> Vec<u8> {
        let data_len = self.data.as_ref().map_or(0, |d| d.len());
        let mut out = Vec::with_capacity(16 + data_len + 10 * self.blocksizes.len());
        put_varint_field(&mut out, 1, self.kind as u64);
        if let Some(data) = &self.data {
            put_key(&mut out, 2, WIRE_LEN);
            put_varint(&mut out, data.len() as u64);
            out.extend_from_slice(data);
        }
        if let Some(size) = self.filesize {
            put_varint_field(&mut out, 3, size);
        }
        for size in &self.blocksizes {
            put_varint_field(&mut out, 4, *size);
        }
        if let Some(h) = self.hash_type {
            put_varint_field(&mut out, 5, h);
        }
        if let Some(f) = self.fanout {
            put_varint_field(&mut out, 6, f);
        }
        out
    }

    /// Decodes a `Data` message; `data` is a slice of `buf` (no copy).
    ///
    /// # Errors
    /// A description of what is malformed; never panics.
    pub fn decode(buf: &Bytes) -> Result<Data, String> {
        let mut r = Reader { buf, pos: 0 };
        let mut kind = None;
        let mut msg = Data::new(DataType::Raw);
        while !r.done() {
            let key = r.varint()?;
            let (field, wire) = (key >> 3, (key & 7) as u8);
            match (field, wire) {
                (1, WIRE_VARINT) => {
                    let v = r.varint()?;
                    kind = Some(DataType::from_u64(v).ok_or(format!("unknown Data.Type {v}"))?);
                }
                (2, WIRE_LEN) => msg.data = Some(r.bytes()?),
                (3, WIRE_VARINT) => msg.filesize = Some(r.varint()?),
                (4, WIRE_VARINT) => msg.blocksizes.push(r.varint()?),
                (4, WIRE_LEN) => {
                    let packed = r.bytes()?;
                    let mut p = Reader {
                        buf: &packed,
                        pos: 0,
                    };
                    while !p.done() {
                        msg.blocksizes.push(p.varint()?);
                    }
                }
                (5, WIRE_VARINT) => msg.hash_type = Some(r.varint()?),
                (6, WIRE_VARINT) => msg.fanout = Some(r.varint()?),
                (1..=6, _) => return Err(format!("field {field} has wire type {wire}")),
                _ => r.skip(wire)?,
            }
        }
        msg.kind = kind.ok_or("Data.Type is missing")?;
        Ok(msg)
    }
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

fn put_key(out: &mut Vec<u8>, field: u64, wire: u8) {
    put_varint(out, (field << 3) | wire as u64);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_key(out, field, WIRE_VARINT);
    put_varint(out, v);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes a protobuf varint of `v` takes.
pub(crate) fn varint_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("truncated varint".into());
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits".into());
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn bytes(&mut self) -> Result<Bytes, String> {
        let len = self.varint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .filter(|end| *end <= self.buf.len())
            .ok_or("length past the end of the message")?;
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u8) -> Result<(), String> {
        let n = match wire {
            WIRE_VARINT => return self.varint().map(drop),
            WIRE_LEN => return self.bytes().map(drop),
            WIRE_FIXED64 => 8,
            WIRE_FIXED32 => 4,
            w => return Err(format!("unsupported wire type {w}")),
        };
        if self.buf.len() - self.pos < n {
            return Err("truncated field".into());
        }
        self.pos += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_reference_importers() {
        // An empty file leaf and a directory, as in the well-known empty CIDs.
        let mut empty = Data::new(DataType::File);
        empty.filesize = Some(0);
        assert_eq!(empty.encode(), [0x08, 0x02, 0x18, 0x00]);
        assert_eq!(Data::new(DataType::Directory).encode(), [0x08, 0x01]);
        let mut parent = Data::new(DataType::File);
        parent.filesize = Some(300);
        parent.blocksizes = vec![200, 100];
        let bytes = parent.encode();
        assert_eq!(
            bytes,
            [0x08, 0x02, 0x18, 0xac, 0x02, 0x20, 0xc8, 0x01, 0x20, 0x64]
        );
        assert_eq!(Data::decode(&Bytes::from(bytes)).unwrap(), parent);
    }

    #[test]
    fn decodes_packed_blocksizes_and_skips_unknown_fields() {
        // Type=File, blocksizes packed [1, 2], field 7 (mode) = 420, field 8 (mtime) message.
        let buf = Bytes::from_static(&[
            0x08, 0x02, 0x22, 0x02, 0x01, 0x02, 0x38, 0xa4, 0x03, 0x42, 0x02, 0x08, 0x01,
        ]);
        let d = Data::decode(&buf).unwrap();
        assert_eq!((d.kind, d.blocksizes), (DataType::File, vec![1, 2]));
    }

    #[test]
    fn malformed_messages_are_errors() {
        for bad in [
            &[][..],                         // no type
            &[0x08],                         // truncated varint
            &[0x08, 0x09],                   // unknown type
            &[0x08, 0x02, 0x12, 0x05, 0x01], // data past the end
            &[
                0x08, 0x02, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            &[0x08, 0x02, 0x1b],       // start group
            &[0x0a, 0x00],             // type as bytes
            &[0x08, 0x02, 0x19, 0x00], // fixed64 truncated
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ] {
            assert!(
                Data::decode(&Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}

//! Just enough UnixFS to walk paths and pick the blocks of an entity or a byte range: the
//! dag-pb framing is `ipld-dagpb`'s; the UnixFS `Data` message is read here (type, inline
//! data, filesize, blocksizes, HAMT hash type and fanout), and HAMT slots are computed
//! with murmur3-x64-64 as the reference importers do.
//!
//! Decoding never panics and never allocates more than the block holds.

use bytes::Bytes;
use cid::Cid;
use ipld_dagpb::{PbLink, PbNode};

/// Multicodec of dag-pb.
pub(crate) const DAG_PB: u64 = 0x70;
/// Multicodec of raw.
pub(crate) const RAW: u64 = 0x55;
/// Multicodec of dag-cbor.
pub(crate) const DAG_CBOR: u64 = 0x71;
/// Multicodec of murmur3-x64-64, the only HAMT hash the importers use.
const MURMUR3: u64 = 0x22;

/// `Data.Type` of a UnixFS node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataType {
    Raw,
    Directory,
    File,
    Metadata,
    Symlink,
    HamtShard,
}

/// The fields of a UnixFS `Data` message this crate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Data {
    pub kind: DataType,
    pub data: Bytes,
    pub filesize: Option<u64>,
    pub blocksizes: Vec<u64>,
    pub hash_type: Option<u64>,
    pub fanout: Option<u64>,
}

/// A decoded dag-pb node and its UnixFS data (`None` when `Data` is absent or not UnixFS).
pub(crate) struct PbUnixfs {
    pub links: Vec<PbLink>,
    pub data: Option<Data>,
}

/// What a block is, as far as UnixFS is concerned.
pub(crate) enum Node {
    /// A raw block: a file of its own bytes.
    Raw(Bytes),
    /// A dag-pb node.
    Pb(PbUnixfs),
    /// Any other codec (or dag-pb that does not decode).
    Other,
}

impl Node {
    /// Decodes `bytes` of the block `cid`.
    pub fn decode(cid: &Cid, bytes: &Bytes) -> Node {
        match cid.codec() {
            RAW => Node::Raw(bytes.clone()),
            DAG_PB => match PbNode::from_bytes(bytes.clone()) {
                Ok(node) => Node::Pb(PbUnixfs {
                    data: node.data.as_ref().and_then(|d| decode_data(d).ok()),
                    links: node.links,
                }),
                Err(_) => Node::Other,
            },
            _ => Node::Other,
        }
    }

    /// The file's size if this is a UnixFS file (a raw block, or a dag-pb `File`/`Raw`).
    pub fn file_size(&self) -> Option<u64> {
        match self {
            Node::Raw(b) => Some(b.len() as u64),
            Node::Pb(PbUnixfs {
                data: Some(d),
                links,
            }) if matches!(d.kind, DataType::File | DataType::Raw) => {
                let children: u64 = d.blocksizes.iter().fold(0u64, |a, b| a.saturating_add(*b));
                let own = d.data.len() as u64;
                Some(d.filesize.unwrap_or_else(|| {
                    if links.is_empty() {
                        own
                    } else {
                        own.saturating_add(children)
                    }
                }))
            }
            _ => None,
        }
    }

    /// The UnixFS type of a dag-pb node.
    pub fn kind(&self) -> Option<DataType> {
        match self {
            Node::Pb(PbUnixfs { data: Some(d), .. }) => Some(d.kind),
            _ => None,
        }
    }
}

/// The number of hex digits of a HAMT slot prefix for `fanout` (2 for 256), or `None` for a
/// fanout that is not a power of two between 2 and 2^16 or a hash other than murmur3.
pub(crate) fn shard_width(data: &Data) -> Option<usize> {
    if data.hash_type != Some(MURMUR3) {
        return None;
    }
    let fanout = data.fanout?;
    if !(2..=65536).contains(&fanout) || !fanout.is_power_of_two() {
        return None;
    }
    Some(format!("{:X}", fanout - 1).len())
}

/// The slot of `name` at `depth` of a HAMT with `fanout` slots per level (power of two of
/// at most 256: the JS and Go importers' `hamt-sharding` "infinite hash" of murmur3 x64
/// 128, first 8 bytes big-endian, one suffix byte per 8 levels).
pub(crate) fn hamt_slot(name: &[u8], depth: usize, fanout: u64) -> Option<u64> {
    if fanout != 256 {
        // Only 8-bit levels are built by the importers; narrower ones would need bit
        // arithmetic across bytes that no fixture exercises.
        return None;
    }
    let round = depth / 8;
    let h1 = if round == 0 {
        murmur3_x64_128(name).0
    } else {
        let mut suffixed = Vec::with_capacity(name.len() + 1);
        suffixed.extend_from_slice(name);
        suffixed.push(u8::try_from(round).ok()?);
        murmur3_x64_128(&suffixed).0
    };
    Some(u64::from(h1.to_be_bytes()[depth % 8]))
}

/// Decodes the UnixFS `Data` message (proto2; unknown fields skipped, packed blocksizes
/// accepted).
pub(crate) fn decode_data(buf: &Bytes) -> Result<Data, &'static str> {
    let mut r = Reader { buf, pos: 0 };
    let mut kind = None;
    let mut msg = Data {
        kind: DataType::Raw,
        data: Bytes::new(),
        filesize: None,
        blocksizes: Vec::new(),
        hash_type: None,
        fanout: None,
    };
    while !r.done() {
        let key = r.varint()?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        match (field, wire) {
            (1, 0) => {
                kind = Some(match r.varint()? {
                    0 => DataType::Raw,
                    1 => DataType::Directory,
                    2 => DataType::File,
                    3 => DataType::Metadata,
                    4 => DataType::Symlink,
                    5 => DataType::HamtShard,
                    _ => return Err("unknown Data.Type"),
                })
            }
            (2, 2) => msg.data = r.bytes()?,
            (3, 0) => msg.filesize = Some(r.varint()?),
            (4, 0) => msg.blocksizes.push(r.varint()?),
            (4, 2) => {
                let packed = r.bytes()?;
                let mut p = Reader {
                    buf: &packed,
                    pos: 0,
                };
                while !p.done() {
                    msg.blocksizes.push(p.varint()?);
                }
            }
            (5, 0) => msg.hash_type = Some(r.varint()?),
            (6, 0) => msg.fanout = Some(r.varint()?),
            (1..=6, _) => return Err("a UnixFS field has the wrong wire type"),
            _ => r.skip(wire)?,
        }
    }
    msg.kind = kind.ok_or("Data.Type is missing")?;
    Ok(msg)
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("truncated varint");
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    fn bytes(&mut self) -> Result<Bytes, &'static str> {
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

    fn skip(&mut self, wire: u8) -> Result<(), &'static str> {
        let n = match wire {
            0 => return self.varint().map(drop),
            2 => return self.bytes().map(drop),
            1 => 8,
            5 => 4,
            _ => return Err("unsupported wire type"),
        };
        if self.buf.len() - self.pos < n {
            return Err("truncated field");
        }
        self.pos += n;
        Ok(())
    }
}

/// MurmurHash3 x64 128-bit with seed 0; returns `(h1, h2)`.
fn murmur3_x64_128(data: &[u8]) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let mut k1 = [0u8; 8];
        let mut k2 = [0u8; 8];
        k1.copy_from_slice(&block[..8]);
        k2.copy_from_slice(&block[8..]);
        let (k1, k2) = (u64::from_le_bytes(k1), u64::from_le_bytes(k2));
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, b) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= u64::from(*b) << (8 * i);
        } else {
            k2 |= u64::from(*b) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors printed by `@multiformats/murmur3` 2.2.8 (the same as seedbank-files').
    #[test]
    fn murmur3_matches_the_js_implementation() {
        for (input, hex) in [
            ("", "00000000000000000000000000000000"),
            ("a", "85555565f6597889e6b53a48510e895a"),
            ("hello", "cbd8a7b341bd9b025b1e906a48ae1d19"),
            ("0123456789abcdef0", "eb24ae8785a5c07573fb68b3313128ca"),
        ] {
            let (h1, h2) = murmur3_x64_128(input.as_bytes());
            assert_eq!(format!("{h1:016x}{h2:016x}"), hex, "{input:?}");
        }
    }

    #[test]
    fn data_decoding_rejects_garbage_without_panicking() {
        for bad in [&[0x08u8][..], &[0x08, 0x09], &[0x12, 0x05, 1], &[0xff; 11]] {
            assert!(
                decode_data(&Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
        let ok = decode_data(&Bytes::from_static(&[0x08, 0x02, 0x18, 0x05, 0x20, 0x05])).unwrap();
        assert_eq!(
            (ok.kind, ok.filesize, ok.blocksizes),
            (DataType::File, Some(5), vec![5])
        );
    }
}

//! HAMT-sharded directories as the reference importers build them.
//!
//! A name's slot at depth `d` is byte `d % 8` of the first 8 bytes (big-endian, as the JS
//! `@multiformats/murmur3` prints them) of `murmur3_x64_128(name ‖ [d / 8])`, the suffix
//! byte left out at depths 0–7 (`hamt-sharding`'s "infinite hash"). A slot holds one entry
//! (link name `XX` + the entry's name, `XX` its slot in two upper-case hex digits) or, when
//! two or more names share it, a sub-shard (link name `XX`). Every node's data is
//! `HAMTShard` with the used slots as a big-endian bitmap (leading zero bytes dropped),
//! `hashType` murmur3-x64-64 (0x22) and `fanout` 256.

use std::collections::BTreeMap;

use bytes::Bytes;
use seedbank_blobstore::Blob;

use crate::error::{Error, Result};
use crate::node::{link, pb_block, Child};
use crate::profile::HAMT_FANOUT;
use crate::unixfs::{Data, DataType};

/// Multicodec of murmur3-x64-64, the HAMT's hash.
pub(crate) const HASH_TYPE: u64 = 0x22;

/// Deeper than any directory needs (8 levels use all 64 bits of one hash; past that a
/// second hash is taken); bounds recursion on hostile input and on a full hash collision.
pub(crate) const MAX_DEPTH: usize = 32;

/// One directory entry on its way into a shard.
pub(crate) struct Entry {
    pub name: String,
    pub child: Child,
}

/// Builds the shard tree of `entries` (names unique), pushing every node's block to `out`
/// (sub-shards before their parent); returns the root shard as a child.
pub(crate) fn build(
    entries: Vec<Entry>,
    version: cid::Version,
    out: &mut Vec<Blob>,
) -> Result<Child> {
    let hashed = entries
        .into_iter()
        .map(|e| {
            let h = name_hash(e.name.as_bytes(), 0);
            (h, e)
        })
        .collect();
    build_level(hashed, 0, version, out)
}

fn build_level(
    entries: Vec<([u8; 8], Entry)>,
    depth: usize,
    version: cid::Version,
    out: &mut Vec<Blob>,
) -> Result<Child> {
    let mut slots: BTreeMap<u8, Vec<([u8; 8], Entry)>> = BTreeMap::new();
    for (hash, entry) in entries {
        // Depths 8, 16, ... move on to the next hash of the same name.
        let hash = if depth > 0 && depth.is_multiple_of(8) {
            name_hash(entry.name.as_bytes(), depth / 8)
        } else {
            hash
        };
        slots
            .entry(hash[depth % 8])
            .or_default()
            .push((hash, entry));
    }
    let mut links = Vec::with_capacity(slots.len());
    let mut bitmap = [0u8; 32];
    let mut tsize: u64 = 0;
    for (slot, mut group) in slots {
        bitmap[31 - usize::from(slot / 8)] |= 1 << (slot % 8);
        let (name, child) = if group.len() == 1 {
            let (_, e) = group.pop().expect("one entry");
            (format!("{slot:02X}{}", e.name), e.child)
        } else if depth + 1 >= MAX_DEPTH {
            return Err(Error::Unsupported {
                path: group[0].1.name.clone().into(),
                reason: "its name's hash collides with another name's at every HAMT level",
            });
        } else {
            let sub = build_level(group, depth + 1, version, out)?;
            (format!("{slot:02X}"), sub)
        };
        tsize = tsize.saturating_add(child.tsize);
        links.push(link(name, &child));
    }
    let mut data = Data::new(DataType::HamtShard);
    let first = bitmap.iter().position(|b| *b != 0).unwrap_or(31);
    data.data = Some(Bytes::copy_from_slice(&bitmap[first..]));
    data.hash_type = Some(HASH_TYPE);
    data.fanout = Some(HAMT_FANOUT);
    let blob = pb_block(links, &data, version);
    let child = Child {
        cid: *blob.cid(),
        file_size: 0,
        tsize: tsize.saturating_add(blob.len() as u64),
    };
    out.push(blob);
    Ok(child)
}

/// The 8 hash bytes that pick `name`'s slots at depths `8 * round` to `8 * round + 7`.
pub(crate) fn name_hash(name: &[u8], round: usize) -> [u8; 8] {
    let h1 = if round == 0 {
        murmur3_x64_128(name).0
    } else {
        let mut suffixed = Vec::with_capacity(name.len() + 1);
        suffixed.extend_from_slice(name);
        // `hamt-sharding` appends the round as one byte (`Uint8Array.from([depth])`).
        suffixed.push(round as u8);
        murmur3_x64_128(&suffixed).0
    };
    h1.to_be_bytes()
}

/// The slot of `name` at `depth` in a HAMT shard of `fanout` slots, as the reference
/// importers hash it (murmur3-x64-64, one byte per level); `None` for fanouts other than
/// [`HAMT_FANOUT`](crate::HAMT_FANOUT), the only width they build.
pub fn slot(name: &[u8], depth: usize, fanout: u64) -> Option<usize> {
    if fanout != HAMT_FANOUT {
        return None;
    }
    Some(usize::from(name_hash(name, depth / 8)[depth % 8]))
}

/// MurmurHash3 x64 128-bit with seed 0; returns `(h1, h2)`.
pub(crate) fn murmur3_x64_128(data: &[u8]) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let k1 = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
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

    /// Vectors printed by `@multiformats/murmur3` 2.2.8 (`murmurHash3_x64_128`, hex).
    #[test]
    fn murmur3_matches_the_js_implementation() {
        for (input, hex) in [
            ("", "00000000000000000000000000000000"),
            ("a", "85555565f6597889e6b53a48510e895a"),
            ("hello", "cbd8a7b341bd9b025b1e906a48ae1d19"),
            ("file-0001", "396ca3564d1327cac8185eccf23a8261"),
            ("0123456789abcdef0", "eb24ae8785a5c07573fb68b3313128ca"),
            ("ünïcode ñame.txt", "c48691ae9098f173b5e5ff9f76b77799"),
        ] {
            let (h1, h2) = murmur3_x64_128(input.as_bytes());
            assert_eq!(format!("{h1:016x}{h2:016x}"), hex, "{input:?}");
        }
    }

    #[test]
    fn slots_read_the_hash_from_its_first_byte() {
        assert_eq!(slot(b"hello", 0, 256), Some(0xcb));
        assert_eq!(slot(b"hello", 1, 256), Some(0xd8));
        assert_eq!(slot(b"hello", 7, 256), Some(0x02));
        assert_eq!(slot(b"hello", 0, 16), None);
    }
}

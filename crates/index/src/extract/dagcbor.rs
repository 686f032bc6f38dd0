//! DAG-CBOR links: every tag-42 CID, found without building an `Ipld` tree.
//!
//! The strict path is `serde_ipld_dagcbor` with `ipld-core`'s `ExtractLinks`. Blocks it
//! rejects get a second, structural read with `cbor4ii` (the CBOR decoder beneath
//! `serde_ipld_dagcbor`) that accepts text strings that are not UTF-8: go-ipld-cbor wrote
//! those (Filecoin HAMT keys, 140 of the 1043 DAG-CBOR blocks of go-car's `sample-v1.car`),
//! and their links are as well-formed as anyone's. Everything else DAG-CBOR forbids
//! (indefinite lengths, tags other than 42, undefined, half and single floats, trailing
//! bytes) still makes a block not indexable.

use cbor4ii::core::dec::{self, Decode, Read};
use cbor4ii::core::utils::SliceReader;
use cbor4ii::core::{major, marker, types};
use cid::Cid;
use ipld_core::serde::ExtractLinks;
use serde::Deserialize;
use serde_ipld_dagcbor::de::Deserializer;

/// Deepest nesting the structural read follows (serde_ipld_dagcbor's default is 256).
const MAX_DEPTH: usize = 256;
/// The CID tag.
const TAG_CID: u64 = 42;

/// The block's links in document order, or `None` if it is not DAG-CBOR.
pub(super) fn links(data: &[u8]) -> Option<Vec<Cid>> {
    strict(data).or_else(|| tolerant(data))
}

fn strict(data: &[u8]) -> Option<Vec<Cid>> {
    let mut de = Deserializer::from_slice(data);
    let links = ExtractLinks::<64>::deserialize(&mut de).ok()?.into_vec();
    // `Links::links` of the codec stops after one value; bytes after it are not DAG-CBOR.
    de.end().ok()?;
    Some(links)
}

fn tolerant(data: &[u8]) -> Option<Vec<Cid>> {
    let mut reader = SliceReader::new(data);
    let mut links = Vec::new();
    walk(&mut reader, 0, &mut links)?;
    peek(&mut reader).is_none().then_some(links)
}

/// The next byte without consuming it; `None` at the end of the input.
fn peek(reader: &mut SliceReader<'_>) -> Option<u8> {
    reader.fill(1).ok()?.as_ref().first().copied()
}

/// Reads one data item, collecting the CIDs in it.
fn walk(reader: &mut SliceReader<'_>, depth: usize, links: &mut Vec<Cid>) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let head = peek(reader)?;
    match dec::if_major(head) {
        major::UNSIGNED | major::NEGATIVE => {
            i128::decode(reader).ok()?;
        }
        major::BYTES => {
            <types::Bytes<&[u8]>>::decode(reader).ok()?;
        }
        major::STRING => {
            <types::UncheckedStr<&[u8]>>::decode(reader).ok()?;
        }
        major::ARRAY => {
            // `None` is an indefinite length, which DAG-CBOR forbids.
            for _ in 0..types::Array::len(reader).ok()?? {
                walk(reader, depth + 1, links)?;
            }
        }
        major::MAP => {
            for _ in 0..types::Map::len(reader).ok()?? {
                walk(reader, depth + 1, links)?;
                walk(reader, depth + 1, links)?;
            }
        }
        major::TAG => links.push(cid(reader)?),
        _ => match head {
            marker::FALSE | marker::TRUE | marker::NULL => reader.advance(1),
            marker::F64 => {
                f64::decode(reader).ok()?;
            }
            _ => return None,
        },
    }
    Some(())
}

/// Reads a tag-42 CID: a byte string holding a zero byte (the identity multibase) and the
/// binary CID.
fn cid(reader: &mut SliceReader<'_>) -> Option<Cid> {
    if types::Tag::tag(reader).ok()? != TAG_CID {
        return None;
    }
    let types::Bytes(bytes) = <types::Bytes<&[u8]>>::decode(reader).ok()?;
    match bytes.split_first() {
        Some((0, cid)) => Cid::try_from(cid).ok(),
        _ => None,
    }
}

//! Fuzzing the link extractors (`extract_links` for DAG-CBOR and DAG-PB) on stable Rust
//! (proptest): arbitrary bytes, mutated real blocks from go-car's fixtures, forged CBOR
//! lengths and deep nesting never panic, a block is either indexable or has no links, and
//! the heap allocated stays within what the block's bytes can justify. Generated DAG-CBOR
//! documents give exactly their links in document order, and a mutated block that a full
//! IPLD decode accepts gives the same links as that decode.
//!
//! One `#[test]` runs every property in turn, since the allocation counter is process-wide.
//! Each property runs `CASES` cases; run many more locally with, e.g.
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release -p seedbank-index --test fuzz_extract
//! ```
//!
//! A failure's seed is saved to `fuzz_extract.proptest-regressions` next to this file and
//! replayed first on every run: commit it with the fix.

mod common;
mod fuzz_support;

use std::alloc::System;

use bytes::Bytes;
use cid::Cid;
use common::fixture_bytes;
use fuzz_support::{cases, ready, runner, Meter};
use ipld_core::ipld::Ipld;
use multihash::Multihash;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use seedbank_blobstore::codec;
use seedbank_index::car::CarReader;
use seedbank_index::{extract_links, Extracted};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Cases per property in a normal run (the whole file takes a few seconds in a debug build).
const CASES: u32 = 1024;

/// The fewest bytes a link can take: DAG-CBOR's `d8 2a`, a one-byte byte string head, the
/// zero prefix and a 4-byte CID (version, codec, identity multihash of nothing); DAG-PB's
/// link and hash field heads with their lengths and the same CID.
const MIN_LINK_BYTES: usize = 8;

/// A codec the index does not decode (DAG-JSON).
const DAG_JSON: u64 = 0x0129;

/// Most heap bytes extracting from `input` may allocate in all: copies of it (names, keys),
/// room for the most links it can hold, twice over for vector growth and again for
/// ipld-core's per-container link vectors, and a constant: cbor4ii reserves up to 16 KiB
/// for a string whose claimed length runs past the input, before it finds out.
fn bound(input_len: usize) -> usize {
    let links = input_len / MIN_LINK_BYTES + 1;
    2 * input_len + 4 * links * std::mem::size_of::<Cid>() + 16 * 1024 + 4096
}

/// Extracts `data`'s links under `codec`, metering the heap.
fn extract_metered(codec: u64, data: &Bytes) -> (Extracted, usize) {
    let mut meter = Meter::new(GLOBAL);
    let found = meter.step(|| extract_links(codec, data));
    (found, meter.peak())
}

/// What every extraction must satisfy.
fn check(codec: u64, data: &Bytes) -> Result<Extracted, TestCaseError> {
    let (found, peak) = extract_metered(codec, data);
    prop_assert!(
        peak <= bound(data.len()),
        "{peak} heap bytes extracting from {} bytes under {codec:#x}",
        data.len()
    );
    prop_assert!(found.indexable || found.links.is_empty(), "{found:?}");
    prop_assert!(found.links.len() <= data.len() / MIN_LINK_BYTES);
    match codec {
        codec::RAW => prop_assert_eq!(&found, &leaf()),
        codec::DAG_CBOR | codec::DAG_PB => {}
        _ => prop_assert!(!found.indexable),
    }
    Ok(found)
}

/// `Extracted` of a leaf: no links, indexable.
fn leaf() -> Extracted {
    Extracted {
        links: Vec::new(),
        indexable: true,
    }
}

/// One edit of a block.
#[derive(Clone, Debug)]
enum Edit {
    Set(Index, u8),
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Copies up to this many bytes from one place over another.
    Splice(Index, Index, usize),
    /// Inserts a CBOR head of this major type claiming this length (8-byte argument).
    ForgeHead(Index, u8, u64),
}

fn edit() -> impl Strategy<Value = Edit> {
    let claimed = prop_oneof![
        any::<u64>(),
        0u64..64,
        Just(u64::MAX),
        (1u64 << 20)..(1 << 40)
    ];
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => (any::<Index>(), 1usize..32).prop_map(|(i, n)| Edit::Remove(i, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..64)
            .prop_map(|(a, b, n)| Edit::Splice(a, b, n)),
        2 => (any::<Index>(), 0u8..8, claimed).prop_map(|(i, m, n)| Edit::ForgeHead(i, m, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let len = bytes.len();
    if len == 0 {
        if let Edit::Insert(_, new) = e {
            bytes.extend(new);
        }
        return;
    }
    match e {
        Edit::Set(i, b) => bytes[i.index(len)] = *b,
        Edit::Flip(i, bit) => bytes[i.index(len)] ^= 1 << bit,
        Edit::Truncate(i) => bytes.truncate(i.index(len)),
        Edit::Insert(i, new) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Edit::Remove(i, n) => {
            let at = i.index(len);
            bytes.drain(at..(at + n).min(len));
        }
        Edit::Splice(from, to, n) => {
            let (from, to) = (from.index(len), to.index(len));
            let n = (*n).min(len - from).min(len - to);
            let chunk = bytes[from..from + n].to_vec();
            bytes[to..to + n].copy_from_slice(&chunk);
        }
        Edit::ForgeHead(i, major, n) => {
            let at = i.index(len + 1);
            let mut head = vec![major << 5 | 27];
            head.extend(n.to_be_bytes());
            bytes.splice(at..at, head);
        }
    }
}

/// Every link of a fully decoded IPLD tree, sorted (a decoded map is ordered by key, not by
/// position in the bytes, so only the multiset is comparable).
fn reference_links(ipld: &Ipld) -> Vec<Cid> {
    fn walk(ipld: &Ipld, out: &mut Vec<Cid>) {
        match ipld {
            Ipld::Link(cid) => out.push(*cid),
            Ipld::List(items) => items.iter().for_each(|i| walk(i, out)),
            Ipld::Map(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(ipld, &mut out);
    out.sort();
    out
}

fn sorted(mut cids: Vec<Cid>) -> Vec<Cid> {
    cids.sort();
    cids
}

/// A DAG-CBOR data item, encoded by [`encode`] in the order given.
#[derive(Clone, Debug)]
enum Node {
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Bytes(Vec<u8>),
    /// Text: UTF-8, or any bytes (go-ipld-cbor wrote text that is not UTF-8).
    Text(Vec<u8>),
    Link(Cid),
    List(Vec<Node>),
    Map(Vec<(Vec<u8>, Node)>),
}

fn any_cid() -> impl Strategy<Value = Cid> {
    let codecs = prop::sample::select(vec![codec::RAW, codec::DAG_CBOR, codec::DAG_PB, 0x0129]);
    let hashes = prop::sample::select(vec![(0x12u64, 32usize), (0x1e, 32), (0xb220, 32)]);
    prop_oneof![
        (codecs.clone(), hashes, any::<[u8; 32]>()).prop_map(|(codec, (code, len), d)| {
            Cid::new_v1(codec, Multihash::wrap(code, &d[..len]).unwrap())
        }),
        (codecs, prop::collection::vec(any::<u8>(), 0..=64))
            .prop_map(|(codec, d)| Cid::new_v1(codec, Multihash::wrap(0, &d).unwrap())),
        any::<[u8; 32]>().prop_map(|d| Cid::new_v0(Multihash::wrap(0x12, &d).unwrap()).unwrap()),
    ]
}

fn text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[a-z]{0,12}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        1 => any::<i64>().prop_map(Node::Int),
        1 => any::<f64>().prop_map(Node::Float),
        1 => any::<bool>().prop_map(Node::Bool),
        1 => Just(Node::Null),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Node::Bytes),
        1 => text().prop_map(Node::Text),
        3 => any_cid().prop_map(Node::Link),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Node::List),
            prop::collection::vec((text(), inner), 0..8).prop_map(Node::Map),
        ]
    })
}

/// Appends a CBOR head with the shortest argument encoding.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

/// Encodes `node`, appending its links to `links` in document order.
fn encode(node: &Node, out: &mut Vec<u8>, links: &mut Vec<Cid>) {
    match node {
        Node::Int(i) if *i >= 0 => head(out, 0, *i as u64),
        Node::Int(i) => head(out, 1, !(*i as u64)),
        Node::Float(f) => {
            out.push(0xfb);
            out.extend(f.to_be_bytes());
        }
        Node::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Node::Null => out.push(0xf6),
        Node::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend(b);
        }
        Node::Text(t) => {
            head(out, 3, t.len() as u64);
            out.extend(t);
        }
        Node::Link(cid) => {
            out.extend([0xd8, 42]);
            let bytes = cid.to_bytes();
            head(out, 2, bytes.len() as u64 + 1);
            out.push(0);
            out.extend(bytes);
            links.push(*cid);
        }
        Node::List(items) => {
            head(out, 4, items.len() as u64);
            items.iter().for_each(|i| encode(i, out, links));
        }
        Node::Map(entries) => {
            head(out, 5, entries.len() as u64);
            for (key, value) in entries {
                head(out, 3, key.len() as u64);
                out.extend(key);
                encode(value, out, links);
            }
        }
    }
}

/// Real blocks of each codec the extractors decode, from the fixtures.
fn fixture_blocks() -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    for name in [
        "sample-v1.car",
        "simple-unixfs.car",
        "sample-unixfs-v2.car",
        "wikipedia-cryptographic-hash-function.car",
    ] {
        let bytes = fixture_bytes(name);
        ready(async {
            let mut car = CarReader::new(&bytes[..], 4 << 20).await.unwrap();
            while let Some(block) = car.next_block().await.unwrap() {
                let codec = block.cid.codec();
                if codec == codec::DAG_CBOR || codec == codec::DAG_PB {
                    out.push((codec, block.data));
                }
            }
        });
    }
    out
}

#[test]
fn extractors_never_panic_and_allocate_within_what_the_bytes_justify() {
    let blocks = fixture_blocks();
    for codec in [codec::DAG_CBOR, codec::DAG_PB] {
        assert!(blocks.iter().filter(|(c, _)| *c == codec).count() >= 3);
    }
    let n = cases(CASES);
    let codecs = prop::sample::select(vec![codec::DAG_CBOR, codec::DAG_PB, codec::RAW, DAG_JSON]);

    // 1. Arbitrary bytes under every codec.
    let noise = (codecs, prop::collection::vec(any::<u8>(), 0..2048));
    runner(file!(), n)
        .run(&noise, |(codec, data)| {
            check(codec, &Bytes::from(data))?;
            Ok(())
        })
        .unwrap();

    // 2. Mutated real blocks, decoded under their own codec and the other one. When a full
    //    IPLD decode accepts the mutated bytes, the extractor finds the same links.
    let mutated = (
        0..blocks.len(),
        prop::collection::vec(edit(), 1..4),
        any::<bool>(),
    );
    runner(file!(), n)
        .run(&mutated, |(which, edits, swap)| {
            let (own, original) = &blocks[which];
            let mut data = original.to_vec();
            edits.iter().for_each(|e| apply(&mut data, e));
            let codec = match (*own, swap) {
                (c, false) => c,
                (codec::DAG_CBOR, true) => codec::DAG_PB,
                _ => codec::DAG_CBOR,
            };
            let data = Bytes::from(data);
            let found = check(codec, &data)?;
            let reference = match codec {
                codec::DAG_CBOR => serde_ipld_dagcbor::from_slice::<Ipld>(&data).ok(),
                _ => ipld_dagpb::to_ipld(&data).ok(),
            };
            if let Some(ipld) = reference {
                prop_assert!(found.indexable, "a full decode accepts it: {ipld:?}");
                prop_assert_eq!(sorted(found.links), reference_links(&ipld));
            }
            Ok(())
        })
        .unwrap();

    // 3. Generated DAG-CBOR documents (keys in any order, text that may not be UTF-8):
    //    exactly their links, in document order; then cut short, never a panic.
    runner(file!(), n)
        .run(&(node(), any::<Index>()), |(doc, cut)| {
            let (mut bytes, mut links) = (Vec::new(), Vec::new());
            encode(&doc, &mut bytes, &mut links);
            let data = Bytes::from(bytes);
            let found = check(codec::DAG_CBOR, &data)?;
            prop_assert_eq!(
                found,
                Extracted {
                    links,
                    indexable: true
                }
            );
            let cut = cut.index(data.len());
            let found = check(codec::DAG_CBOR, &data.slice(..cut))?;
            prop_assert!(
                !found.indexable,
                "{cut} of {} bytes is not a document",
                data.len()
            );
            Ok(())
        })
        .unwrap();

    // 4. A link nested in arrays or maps to any depth: found when shallow, refused (not a
    //    stack overflow) when deeper than the decoders follow.
    let nested = (0usize..1500, any::<bool>(), any_cid());
    runner(file!(), n.min(256))
        .run(&nested, |(depth, maps, cid)| {
            let mut bytes = Vec::new();
            for _ in 0..depth {
                bytes.extend(if maps {
                    &[0xa1, 0x61, b'k'][..]
                } else {
                    &[0x81][..]
                });
            }
            let mut links = Vec::new();
            encode(&Node::Link(cid), &mut bytes, &mut links);
            let data = Bytes::from(bytes);
            let (found, peak) = extract_metered(codec::DAG_CBOR, &data);
            // ipld-core's ExtractLinks gives each container its own vector of links.
            let per_level = 4 * std::mem::size_of::<Cid>();
            prop_assert!(peak <= bound(data.len()) + depth * per_level, "{peak}");
            if depth <= 200 {
                prop_assert_eq!(found.links, links);
            } else if depth >= 300 {
                prop_assert_eq!(found, Extracted::default());
            }
            Ok(())
        })
        .unwrap();
}

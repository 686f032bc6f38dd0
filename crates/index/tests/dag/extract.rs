//! Link extraction against reference decodes, and malformed content.

use std::collections::HashSet;

use crate::common::{cid, fixture_bytes, import_fixture, open, read_all, SAMPLE_V1_ROOT};
use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;
use rand::{Rng, SeedableRng};
use seedbank_blobstore::{codec, Blob};
use seedbank_index::{extract_links, Extracted};
use serde_ipld_dagcbor::DecodeError;

/// Every link in a fully decoded IPLD tree.
fn walk_ipld(ipld: &Ipld, out: &mut Vec<Cid>) {
    match ipld {
        Ipld::Link(cid) => out.push(*cid),
        Ipld::List(items) => items.iter().for_each(|i| walk_ipld(i, out)),
        Ipld::Map(map) => map.values().for_each(|v| walk_ipld(v, out)),
        _ => {}
    }
}

/// The links a full `ipld-core` decode finds, sorted (a decoded map is ordered by key, not
/// by position in the bytes, so only the multiset is comparable).
fn reference_links(codec: u64, data: &[u8]) -> Vec<Cid> {
    let ipld: Ipld = match codec {
        codec::DAG_CBOR => serde_ipld_dagcbor::from_slice(data).unwrap(),
        codec::DAG_PB => ipld_dagpb::to_ipld(data).unwrap(),
        codec::RAW => return Vec::new(),
        other => panic!("no reference decoder for codec {other:#x}"),
    };
    let mut out = Vec::new();
    walk_ipld(&ipld, &mut out);
    out.sort();
    out
}

fn sorted(mut cids: Vec<Cid>) -> Vec<Cid> {
    cids.sort();
    cids
}

async fn assert_matches_reference(fixture: &str) -> usize {
    let (_, blocks) = read_all(&fixture_bytes(fixture)).await.unwrap();
    let mut links = 0;
    for block in &blocks {
        let found = extract_links(block.cid.codec(), &block.data);
        assert!(found.indexable, "{} should be indexable", block.cid);
        let expected = reference_links(block.cid.codec(), &block.data);
        assert_eq!(sorted(found.links), expected, "links of {}", block.cid);
        links += expected.len();
    }
    links
}

#[tokio::test]
async fn dag_cbor_links_match_a_full_ipld_decode_on_every_sample_v1_block() {
    let (_, blocks) = read_all(&fixture_bytes("sample-v1.car")).await.unwrap();
    let in_file: HashSet<Cid> = blocks.iter().map(|b| b.cid).collect();
    let (mut decoded, mut non_utf8, mut links) = (0, 0, 0);
    for block in &blocks {
        let found = extract_links(block.cid.codec(), &block.data);
        assert!(found.indexable, "{} should be indexable", block.cid);
        links += found.links.len();
        if block.cid.codec() == codec::RAW {
            assert!(found.links.is_empty());
            continue;
        }
        match serde_ipld_dagcbor::from_slice::<Ipld>(&block.data) {
            Ok(ipld) => {
                let mut expected = Vec::new();
                walk_ipld(&ipld, &mut expected);
                assert_eq!(
                    sorted(found.links),
                    sorted(expected),
                    "links of {}",
                    block.cid
                );
                decoded += 1;
            }
            // go-ipld-cbor wrote some HAMT keys as text that is not UTF-8: the full decode
            // refuses them, extraction reads their links all the same, and the file (a
            // complete DAG) holds every block they link to.
            Err(DecodeError::RequireUtf8 { .. }) => {
                assert!(
                    found.links.iter().all(|l| in_file.contains(l)),
                    "links of {}",
                    block.cid
                );
                non_utf8 += 1;
            }
            Err(e) => panic!("{}: reference decode failed: {e}", block.cid),
        }
    }
    assert_eq!(decoded + non_utf8, 1043);
    assert!(decoded > 900, "most blocks decode fully ({decoded})");
    assert!(links > 1000, "sample-v1 is a linked DAG ({links} links)");
}

#[tokio::test]
async fn every_sample_v1_block_is_reachable_from_its_root() {
    let db = open().await;
    import_fixture(&db, "sample-v1.car").await.unwrap();
    let (_, blocks) = read_all(&fixture_bytes("sample-v1.car")).await.unwrap();
    let reachable: HashSet<Cid> = db
        .reachable(&cid(SAMPLE_V1_ROOT))
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        reachable,
        blocks.iter().map(|b| b.cid).collect::<HashSet<_>>()
    );
}

#[test]
fn text_that_is_not_utf8_does_not_hide_links() {
    let target = *Blob::new(codec::RAW, &b"t"[..]).cid();
    let mut cid_bytes = vec![0u8];
    cid_bytes.extend(target.to_bytes());
    // {"\xff": 42(h'00' + cid)}: a one-entry map whose key is text holding invalid UTF-8.
    let mut data = vec![0xa1, 0x61, 0xff, 0xd8, 0x2a, 0x58, cid_bytes.len() as u8];
    data.extend(cid_bytes);
    let found = extract_links(codec::DAG_CBOR, &Bytes::from(data));
    assert_eq!(
        found,
        Extracted {
            links: vec![target],
            indexable: true
        }
    );
}

#[tokio::test]
async fn dag_pb_links_match_a_full_ipld_decode_in_wire_order() {
    assert!(assert_matches_reference("simple-unixfs.car").await > 0);
    let (_, blocks) = read_all(&fixture_bytes("simple-unixfs.car")).await.unwrap();
    for block in blocks.iter().filter(|b| b.cid.codec() == codec::DAG_PB) {
        let node = ipld_dagpb::PbNode::from_bytes(block.data.clone()).unwrap();
        let in_order: Vec<Cid> = node.links.iter().map(|l| l.cid).collect();
        assert_eq!(extract_links(codec::DAG_PB, &block.data).links, in_order);
    }
}

#[test]
fn dag_cbor_links_come_in_document_order_with_duplicates() {
    let a = *Blob::new(codec::RAW, &b"a"[..]).cid();
    let b = *Blob::new(codec::RAW, &b"b"[..]).cid();
    let node = Ipld::List(vec![
        Ipld::Link(b),
        Ipld::Map([("x".into(), Ipld::Link(a))].into()),
        Ipld::Link(b),
    ]);
    let bytes = Bytes::from(serde_ipld_dagcbor::to_vec(&node).unwrap());
    assert_eq!(
        extract_links(codec::DAG_CBOR, &bytes),
        Extracted {
            links: vec![b, a, b],
            indexable: true
        }
    );
}

#[test]
fn raw_blocks_are_indexable_leaves() {
    let found = extract_links(codec::RAW, &Bytes::from_static(b"\xd8\x2a anything"));
    assert_eq!(
        found,
        Extracted {
            links: vec![],
            indexable: true
        }
    );
}

#[test]
fn malformed_or_unknown_content_is_not_indexable() {
    let truncated = Bytes::from_static(&[0xa1, 0x61, 0x61]); // {"a": <missing value>
    let trailing = Bytes::from_static(&[0x01, 0x02]); // two values
    let float16 = Bytes::from_static(&[0xf9, 0x3c, 0x00]); // DAG-CBOR allows only 64-bit floats
    let not_pb = Bytes::from_static(&[0xff, 0xff, 0xff]);
    for (codec, data) in [
        (codec::DAG_CBOR, &truncated),
        (codec::DAG_CBOR, &trailing),
        (codec::DAG_CBOR, &float16),
        (codec::DAG_PB, &not_pb),
        (codec::DAG_JSON, &Bytes::from_static(b"{}")),
    ] {
        let found = extract_links(codec, data);
        assert_eq!(
            found,
            Extracted {
                links: vec![],
                indexable: false
            },
            "codec {codec:#x}"
        );
    }
}

#[test]
fn random_and_mutated_blocks_never_panic_the_extractors() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let valid = serde_ipld_dagcbor::to_vec(&Ipld::List(vec![
        Ipld::Link(*Blob::new(codec::RAW, &b"x"[..]).cid()),
        Ipld::String("hello".into()),
        Ipld::Map([("k".into(), Ipld::Bytes(vec![1, 2, 3]))].into()),
    ]))
    .unwrap();
    for _ in 0..5000 {
        let mut data = if rng.gen_bool(0.5) {
            valid.clone()
        } else {
            (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
        };
        if !data.is_empty() {
            let at = rng.gen_range(0..data.len());
            data[at] = rng.gen();
            data.truncate(rng.gen_range(0..=data.len()));
        }
        let data = Bytes::from(data);
        for codec in [codec::DAG_CBOR, codec::DAG_PB] {
            let found = extract_links(codec, &data);
            assert!(found.indexable || found.links.is_empty());
        }
    }
}

#[tokio::test]
async fn malformed_dag_cbor_is_stored_but_flagged_not_indexable() {
    let db = open().await;
    let blob = Blob::new(codec::DAG_CBOR, &[0xa1, 0x61, 0x61][..]);
    let cid = db.put(blob).await.unwrap();
    assert_eq!(
        db.store().get(&cid).await.unwrap().as_deref(),
        Some(&[0xa1, 0x61, 0x61][..])
    );
    let info = db.info(&cid).await.unwrap().unwrap();
    assert_eq!((info.indexed, info.indexable, info.links), (true, false, 0));
    assert_eq!(db.links(&cid).await.unwrap(), Some(vec![]));
}

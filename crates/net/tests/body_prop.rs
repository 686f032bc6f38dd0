//! Request and response bodies on arbitrary and forged bytes: never a panic, never more
//! memory than the received bytes can justify, and every valid body round-trips. (The
//! frame header is checked before any body byte is read; see `net.rs` for that over QUIC.)
//! One `#[test]` runs every property in turn, since the allocation counter is
//! process-wide. More cases locally: `PROPTEST_CASES=20000 cargo test -p seedbank-net
//! --test body_prop`.

use std::alloc::System;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::{ItemId, Message, Scope};
use seedbank_net::protocol::{FailCode, Kind, Request, Response};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KINDS: [u8; 8] = [0x01, 0x02, 0x03, 0x81, 0x82, 0x83, 0x90, 0x91];

/// Most heap bytes decoding `body` may allocate: copies of it, the smallest entries it can
/// hold (a CID entry is at least 5 bytes) at their in-memory size, twice for growth, slack.
fn bound(body: &[u8]) -> usize {
    let entries = body.len() / 2 + 1;
    4 * body.len() + 2 * entries * 96 + 8192
}

/// Decodes `body` as a request and as a response of `kind`; returns the bytes allocated.
fn decode_cost(kind: Kind, body: &[u8]) -> usize {
    let region = Region::new(GLOBAL);
    let (a, b) = (Request::decode(kind, body), Response::decode(kind, body));
    let stats = region.change();
    drop((a, b));
    stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize
}

fn within_bound(kind: Kind, body: &[u8]) -> Result<(), TestCaseError> {
    let cost = decode_cost(kind, body);
    prop_assert!(
        cost <= bound(body),
        "{kind:?}: {cost} bytes for {} body bytes",
        body.len()
    );
    Ok(())
}

fn varint(n: u64) -> Vec<u8> {
    let mut buf = unsigned_varint::encode::u64_buffer();
    unsigned_varint::encode::u64(n, &mut buf).to_vec()
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(KINDS.to_vec()).prop_map(|b| Kind::from_u8(b).expect("a kind"))
}

/// A body starting with a forged count (any u64), then a few real bytes.
fn forged() -> impl Strategy<Value = (Kind, Vec<u8>)> {
    (
        kind(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(kind, count, tail)| {
            let mut body = varint(count);
            body.extend(tail);
            (kind, body)
        })
}

fn cid_of(bytes: Vec<u8>) -> cid::Cid {
    *Blob::new(codec::RAW, bytes).cid()
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<[u8; 32]>(), 0..8),
    )
        .prop_map(|(neg, want)| Message {
            negentropy: neg.into(),
            want: want.into_iter().map(ItemId).collect(),
            cids: Vec::new(),
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        ("[a-z:/0-9]{1,40}", message())
            .prop_map(|(name, m)| Request::Reconcile(Scope::named(name), m)),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 0..16)
            .prop_map(|bs| Request::Fetch(bs.into_iter().map(cid_of).collect())),
        Just(Request::Peers),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 0..8).prop_map(|bs| {
            Response::Reconciled(Message {
                negentropy: Bytes::new(),
                want: Vec::new(),
                cids: bs.into_iter().map(cid_of).collect(),
            })
        }),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..256), 0..8).prop_map(|bs| {
            Response::Blobs(
                bs.into_iter()
                    .map(|b| (cid_of(b.clone()), Bytes::from(b)))
                    .collect(),
            )
        }),
        prop::collection::vec("[a-z0-9]{1,80}", 0..8).prop_map(Response::PeerList),
        Just(Response::Busy),
        "[ -~]{0,100}".prop_map(|r| Response::Failed(FailCode::Denied, r)),
    ]
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        ..Config::default()
    })
}

#[test]
fn bodies_never_panic_allocate_within_their_bytes_and_round_trip() {
    let noise = (kind(), prop::collection::vec(any::<u8>(), 0..4096));
    runner()
        .run(&noise, |(kind, body)| within_bound(kind, &body))
        .unwrap();
    runner()
        .run(&forged(), |(kind, body)| within_bound(kind, &body))
        .unwrap();
    runner()
        .run(&(request(), any::<prop::sample::Index>()), |(req, cut)| {
            let (kind, body) = req.encode();
            within_bound(kind, &body)?;
            prop_assert_eq!(Request::decode(kind, &body).unwrap(), req);
            prop_assert!(
                Response::decode(kind, &body).is_err(),
                "a request is no answer"
            );
            let cut = cut.index(body.len().max(1));
            if cut < body.len() {
                prop_assert!(Request::decode(kind, &body[..cut]).is_err());
            }
            Ok(())
        })
        .unwrap();
    runner()
        .run(
            &(response(), any::<prop::sample::Index>()),
            |(resp, cut)| {
                let (kind, body) = resp.encode();
                within_bound(kind, &body)?;
                prop_assert_eq!(Response::decode(kind, &body).unwrap(), resp.clone());
                prop_assert!(
                    Request::decode(kind, &body).is_err(),
                    "an answer is no request"
                );
                let cut = cut.index(body.len().max(1));
                // A Failed reason may be cut anywhere and still decode; the others may not.
                if cut < body.len() && !matches!(resp, Response::Failed(..)) {
                    prop_assert!(Response::decode(kind, &body[..cut]).is_err());
                }
                Ok(())
            },
        )
        .unwrap();
    // A blobs answer claiming 2^60 entries in 1 MiB: the reservation follows the bytes.
    let mut big = varint(1 << 60);
    big.resize(1 << 20, 0);
    let cost = decode_cost(Kind::Blobs, &big);
    assert!(cost <= bound(&big), "{cost}");
    assert!(Response::decode(Kind::Blobs, &big).is_err());
}

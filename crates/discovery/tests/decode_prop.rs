//! `Message::decode` on arbitrary and forged bytes: never a panic, and never more memory
//! than the received bytes can justify. One `#[test]` runs every property in turn, since
//! the allocation counter is process-wide.

use std::alloc::System;

use cid::Cid;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use seedbank_discovery::{ItemId, Message};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Most heap bytes decoding `input` may allocate in all: a copy of it, room for the CIDs it
/// can hold at the fewest bytes each (5), twice over for vector growth, and some slack.
fn bound(input: &[u8]) -> usize {
    let cids = input.len() / 5 + 1;
    2 * input.len() + 2 * cids * std::mem::size_of::<Cid>() + 4096
}

/// Decodes `input`; returns the bytes allocated meanwhile.
fn decode_cost(input: &[u8]) -> usize {
    let region = Region::new(GLOBAL);
    let result = Message::decode(input);
    let stats = region.change();
    drop(result);
    stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize
}

fn varint(n: u64) -> Vec<u8> {
    let mut buf = unsigned_varint::encode::u64_buffer();
    unsigned_varint::encode::u64(n, &mut buf).to_vec()
}

/// Frames with forged counts in front of a few real bytes.
fn forged() -> impl Strategy<Value = Vec<u8>> {
    let tail = prop::collection::vec(any::<u8>(), 0..64);
    (any::<u64>(), any::<u64>(), tail).prop_map(|(want, cids, tail)| {
        let mut out = vec![0];
        out.extend(varint(want % 3));
        out.extend(std::iter::repeat_n(7, 32 * (want % 3) as usize));
        out.extend(varint(cids));
        out.extend(tail);
        out
    })
}

/// Valid messages.
fn valid() -> impl Strategy<Value = Message> {
    (
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<[u8; 32]>(), 0..8),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..8),
    )
        .prop_map(|(neg, want, blobs)| Message {
            negentropy: neg.into(),
            want: want.into_iter().map(ItemId).collect(),
            cids: blobs
                .into_iter()
                .map(|b| *seedbank_blobstore::Blob::new(seedbank_blobstore::codec::RAW, b).cid())
                .collect(),
        })
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

fn within_bound(input: &[u8]) -> Result<(), TestCaseError> {
    let cost = decode_cost(input);
    prop_assert!(
        cost <= bound(input),
        "{cost} bytes for {} input bytes",
        input.len()
    );
    Ok(())
}

#[test]
fn decode_never_panics_and_allocates_within_what_the_bytes_justify() {
    let noise = prop::collection::vec(any::<u8>(), 0..2048);
    runner().run(&noise, |input| within_bound(&input)).unwrap();
    runner()
        .run(&forged(), |input| {
            prop_assert!(Message::decode(&input).is_err());
            within_bound(&input)
        })
        .unwrap();
    runner()
        .run(&(valid(), any::<prop::sample::Index>()), |(msg, cut)| {
            let bytes = msg.encode();
            within_bound(&bytes)?;
            prop_assert_eq!(Message::decode(&bytes).unwrap(), msg);
            let cut = cut.index(bytes.len());
            prop_assert!(Message::decode(&bytes[..cut]).is_err());
            Ok(())
        })
        .unwrap();
    // A 1 MiB frame claiming 2^60 CIDs: the reservation follows the bytes, not the count.
    let mut big = vec![0, 0];
    big.extend(varint(1 << 60));
    big.resize(1 << 20, 0xff);
    within_bound(&big).unwrap();
}

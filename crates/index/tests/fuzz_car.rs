//! Fuzzing `CarReader` on stable Rust (proptest): arbitrary bytes, forged lengths and
//! mutations of go-car's fixtures never panic, every failure is `Error::Car` (or
//! `Error::CarIo` when the underlying reader fails), and peak heap use while reading stays
//! within a small multiple of the input plus a constant: nothing is allocated at a size a
//! length prefix chose.
//!
//! One `#[test]` runs every property in turn, since the allocation counter is process-wide.
//! Each property runs `CASES` cases; run many more locally with, e.g.
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release -p seedbank-index --test fuzz_car
//! ```
//!
//! A failure's seed is saved to `fuzz_car.proptest-regressions` next to this file and
//! replayed first on every run: commit it with the fix.

mod common;
mod fuzz_support;

use std::alloc::System;
use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use common::fixture_bytes;
use fuzz_support::{cases, ready, runner, varint, Meter};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use seedbank_index::car::{CarBlock, CarReader, MAX_CID_BYTES, MAX_HEADER_BYTES};
use seedbank_index::Error;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::io::{AsyncRead, ReadBuf};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Cases per property in a normal run (the whole file takes a few seconds in a debug build).
const CASES: u32 = 768;

/// The section limit `car::import` uses with the default store config.
fn max_section() -> usize {
    seedbank_blobstore::Config::default().max_blob_size + MAX_CID_BYTES
}

/// Most heap a read of `input` may use at once: the reader's 64 KiB buffer and a copy
/// buffer, then up to three times the input (a section's bytes while its buffer grows).
fn bound(input_len: usize) -> usize {
    3 * input_len + 96 * 1024
}

/// Every fixture in `testdata/car`, valid or not.
const FIXTURES: &[&str] = &[
    "sample-v1.car",
    "simple-unixfs.car",
    "sample-unixfs-v2.car",
    "wikipedia-cryptographic-hash-function.car",
    "sample-wrapped-v2.car",
    "sample-v1-with-zero-len-section.car",
    "simple-unixfs-missing-blocks.car",
    "sample-v1-noidentity.car",
    "sample-v1-tailing-corrupt-section.car",
    "sample-v2-corrupt-data-and-index.car",
    "badheaderlength.car",
    "badsectionlength.car",
];

/// A fixture and what a clean read of it gives.
struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
    /// `Ok(version)` or the error a clean read ends with.
    outcome: Result<u64, String>,
    blocks: Vec<CarBlock>,
    /// Bytes consumed by a clean read (a CARv2 index after the payload is never read).
    consumed: u64,
}

fn load_fixtures() -> Vec<Fixture> {
    FIXTURES
        .iter()
        .map(|&name| {
            let bytes = fixture_bytes(name);
            let mut blocks = Vec::new();
            let (outcome, consumed) = ready(async {
                let mut car = match CarReader::new(&bytes[..], max_section()).await {
                    Ok(car) => car,
                    Err(e) => return (Err(e.to_string()), 0),
                };
                loop {
                    match car.next_block().await {
                        Ok(Some(block)) => blocks.push(block),
                        Ok(None) => return (Ok(car.version()), car.offset()),
                        Err(e) => return (Err(e.to_string()), car.offset()),
                    }
                }
            });
            Fixture {
                name,
                bytes,
                outcome,
                blocks,
                consumed,
            }
        })
        .collect()
}

/// How a metered read of a whole CAR went.
struct Read {
    result: Result<u64, Error>,
    /// Blocks returned before the end or the error.
    blocks: usize,
    /// Leading blocks identical (offset, CID, bytes) to the fixture's.
    same_prefix: usize,
    peak: usize,
}

/// Reads every block of `reader`, metering heap use, comparing blocks with `original`.
fn read_metered<R: AsyncRead + Unpin>(reader: R, original: &[CarBlock]) -> Read {
    let mut meter = Meter::new(GLOBAL);
    let (mut blocks, mut same_prefix) = (0, 0);
    let result = (|| {
        let mut car = meter.step(|| ready(CarReader::new(reader, max_section())))?;
        while let Some(block) = meter.step(|| ready(car.next_block()))? {
            if same_prefix == blocks && original.get(blocks) == Some(&block) {
                same_prefix += 1;
            }
            blocks += 1;
        }
        Ok(car.version())
    })();
    Read {
        result,
        blocks,
        same_prefix,
        peak: meter.peak(),
    }
}

/// The checks every read must pass: a specific error naming an offset inside the input,
/// and heap use within [`bound`].
fn check_read(read: &Read, input_len: usize) -> Result<(), TestCaseError> {
    match &read.result {
        Ok(_) => {}
        Err(Error::Car { offset, .. }) => {
            prop_assert!(*offset as usize <= input_len, "{:?}", read.result)
        }
        Err(other) => prop_assert!(false, "not a CAR error: {other:?}"),
    }
    prop_assert!(
        read.peak <= bound(input_len),
        "peak heap {} bytes reading {input_len} input bytes ({:?})",
        read.peak,
        read.result
    );
    Ok(())
}

/// One edit of a fixture.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrites a byte.
    Set(Index, u8),
    /// Flips one bit.
    Flip(Index, u8),
    /// Cuts the input.
    Truncate(Index),
    /// Inserts bytes.
    Insert(Index, Vec<u8>),
    /// Removes up to this many bytes.
    Remove(Index, usize),
    /// Copies up to this many bytes from one place over another.
    Splice(Index, Index, usize),
    /// Replaces the length varint of one of the fixture's sections.
    ForgeSectionLength(Index, u64),
}

/// Lengths worth forging: anything, small ones, the limits and just past them.
fn forged_length() -> impl Strategy<Value = u64> {
    let max = max_section() as u64;
    prop_oneof![
        any::<u64>(),
        0u64..4096,
        (max - 2)..(max + 3),
        (MAX_HEADER_BYTES - 2)..(MAX_HEADER_BYTES + 3),
        Just(u64::MAX >> 1),
        (1u64 << 20)..(1u64 << 40),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..64)
            .prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
        2 => (any::<Index>(), forged_length()).prop_map(|(i, n)| Mutation::ForgeSectionLength(i, n)),
    ]
}

/// Applies `m`; returns the lowest offset it changed (`None` if it changed nothing).
fn apply(bytes: &mut Vec<u8>, m: &Mutation, sections: &[CarBlock]) -> Option<usize> {
    if bytes.is_empty() {
        return None;
    }
    let len = bytes.len();
    match m {
        Mutation::Set(i, b) => {
            let at = i.index(len);
            (bytes[at] != *b).then(|| {
                bytes[at] = *b;
                at
            })
        }
        Mutation::Flip(i, bit) => {
            let at = i.index(len);
            bytes[at] ^= 1 << bit;
            Some(at)
        }
        Mutation::Truncate(i) => {
            let at = i.index(len);
            bytes.truncate(at);
            Some(at)
        }
        Mutation::Insert(i, new) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, new.iter().copied());
            Some(at)
        }
        Mutation::Remove(i, n) => {
            let at = i.index(len);
            bytes.drain(at..(at + n).min(len));
            Some(at)
        }
        Mutation::Splice(from, to, n) => {
            let (from, to) = (from.index(len), to.index(len));
            let n = (*n).min(len - from).min(len - to);
            let chunk = bytes[from..from + n].to_vec();
            bytes[to..to + n].copy_from_slice(&chunk);
            Some(to)
        }
        Mutation::ForgeSectionLength(i, n) => {
            let at = sections.get(i.index(sections.len().max(1)))?.offset as usize;
            let (_, rest) = unsigned_varint::decode::u64(bytes.get(at..)?).ok()?;
            let old = len - at - rest.len();
            bytes.splice(at..at + old, varint(*n));
            Some(at)
        }
    }
}

/// Gives `bytes` up to `fail_at`, then fails with an I/O error.
struct FailingReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    fail_at: usize,
}

impl AsyncRead for FailingReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let end = self.fail_at.min(self.bytes.len());
        if self.pos >= end {
            if self.pos >= self.bytes.len() {
                return Poll::Ready(Ok(())); // clean end of input
            }
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let n = buf.remaining().min(end - self.pos);
        buf.put_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[test]
fn car_reader_never_panics_fails_with_car_errors_and_allocates_within_the_input() {
    let fixtures = load_fixtures();
    let by_name = |name: &str| fixtures.iter().find(|f| f.name == name).unwrap();
    let v1 = by_name("sample-v1.car");
    let v1_header = v1.bytes[..v1.blocks[0].offset as usize].to_vec();
    let v2 = by_name("sample-unixfs-v2.car");
    let v2_pragma = v2.bytes[..11].to_vec();
    let small_v1 = by_name("simple-unixfs.car").bytes.clone();
    // The root as DAG-CBOR: tag 42, a byte string of a zero byte and the binary CID.
    let v1_root_cbor = {
        let root = common::cid(common::SAMPLE_V1_ROOT).to_bytes();
        let mut out = vec![0xd8, 0x2a, 0x58, root.len() as u8 + 1, 0];
        out.extend(root);
        out
    };
    let n = cases(CASES);

    // 1. Arbitrary bytes, alone or after a valid CARv1 header or the CARv2 pragma.
    let noise = (0usize..3, prop::collection::vec(any::<u8>(), 0..4096));
    runner(file!(), n)
        .run(&noise, |(prefix, tail)| {
            let mut input = [&[][..], &v1_header, &v2_pragma][prefix].to_vec();
            input.extend(tail);
            check_read(&read_metered(&input[..], &[]), input.len())
        })
        .unwrap();

    // 2. Forged lengths in front of a few real bytes: of the header, of a section, or of
    //    the header's list of roots. An error, and no allocation at the claimed size.
    let forged = (
        0usize..3,
        forged_length(),
        prop::collection::vec(any::<u8>(), 0..256),
    );
    runner(file!(), n)
        .run(&forged, |(what, len, tail)| {
            let (input, claimed_past_the_end) = match what {
                0 | 1 => {
                    let mut input = if what == 1 {
                        v1_header.clone()
                    } else {
                        Vec::new()
                    };
                    input.extend(varint(len));
                    input.extend(&tail);
                    (input, len > tail.len() as u64)
                }
                _ => {
                    // {"roots": [<len CIDs claimed, the first root given>], "version": 1}
                    let mut header = vec![0xa2, 0x65];
                    header.extend(b"roots");
                    header.push(0x9b);
                    header.extend(len.to_be_bytes());
                    header.extend(&v1_root_cbor);
                    header.extend(tail.iter().take(16));
                    header.push(0x67);
                    header.extend(b"version");
                    header.push(0x01);
                    let mut input = varint(header.len() as u64);
                    input.extend(header);
                    (input, len > 1)
                }
            };
            let read = read_metered(&input[..], &[]);
            check_read(&read, input.len())?;
            if claimed_past_the_end {
                prop_assert!(read.result.is_err(), "{len} bytes claimed, fewer given");
            }
            Ok(())
        })
        .unwrap();

    // 3. A CARv2 header with forged payload offset and size, over a real CARv1 payload or
    //    noise.
    let v2_forged = (
        prop_oneof![any::<u64>(), 0u64..256],
        prop_oneof![any::<u64>(), 0u64..4096, Just(u64::MAX)],
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..512),
    );
    runner(file!(), n)
        .run(&v2_forged, |(offset, size, real, noise)| {
            let mut input = v2_pragma.clone();
            input.extend([0u8; 16]);
            input.extend(offset.to_le_bytes());
            input.extend(size.to_le_bytes());
            input.extend(0u64.to_le_bytes());
            input.extend(if real { &small_v1 } else { &noise });
            check_read(&read_metered(&input[..], &[]), input.len())
        })
        .unwrap();

    // 4. Mutated fixtures: the checks above, and blocks before the first change come back
    //    exactly as in the original.
    let mutated = (
        0..fixtures.len(),
        prop::collection::vec(mutation(), 1..4),
        prop::option::of(any::<Index>()),
    );
    runner(file!(), n)
        .run(&mutated, |(which, mutations, prefix)| {
            let f = &fixtures[which];
            // Half the time, a prefix: mutations land near the start of large files too.
            let keep = prefix.map_or(f.bytes.len(), |i| i.index(f.bytes.len().min(8192) + 1));
            let mut input = f.bytes[..keep].to_vec();
            let mut first_change = keep;
            for m in &mutations {
                if let Some(at) = apply(&mut input, m, &f.blocks) {
                    first_change = first_change.min(at);
                }
            }
            let read = read_metered(&input[..], &f.blocks);
            check_read(&read, input.len())?;
            // Blocks whose sections end before the first change, after the header, are read
            // unchanged (for CARv2 the payload bounds sit in the header, before them).
            let untouched = f
                .blocks
                .iter()
                .take_while(|b| b.offset as usize + section_len(b) <= first_change)
                .count();
            prop_assert!(
                read.same_prefix >= untouched,
                "{}: {} blocks unchanged, {untouched} expected ({:?})",
                f.name,
                read.same_prefix,
                read.result
            );
            Ok(())
        })
        .unwrap();

    // 5. Truncated valid CARv1 files: clean only at a section boundary after the header.
    let v1_files: Vec<&Fixture> = fixtures
        .iter()
        .filter(|f| f.outcome == Ok(1) && !f.name.contains("zero-len"))
        .collect();
    runner(file!(), n)
        .run(&(0..v1_files.len(), any::<Index>()), |(which, cut)| {
            let f = v1_files[which];
            let cut = cut.index(f.bytes.len() + 1);
            let boundaries: HashSet<usize> = f
                .blocks
                .iter()
                .map(|b| b.offset as usize)
                .chain([f.bytes.len()])
                .collect();
            let read = read_metered(&f.bytes[..cut], &f.blocks);
            check_read(&read, cut)?;
            let clean = cut >= f.blocks[0].offset as usize && boundaries.contains(&cut);
            prop_assert_eq!(read.result.is_ok(), clean, "{} cut at {}", f.name, cut);
            prop_assert_eq!(read.same_prefix, read.blocks);
            Ok(())
        })
        .unwrap();

    // 6. The underlying reader failing part-way through a fixture: `CarIo` naming an offset
    //    at or before the failure, unless the clean read was over (or failed) before it.
    runner(file!(), n)
        .run(&(0..fixtures.len(), any::<Index>()), |(which, at)| {
            let f = &fixtures[which];
            let fail_at = at.index(f.bytes.len() + 1);
            let reader = FailingReader {
                bytes: &f.bytes,
                pos: 0,
                fail_at,
            };
            let read = read_metered(reader, &f.blocks);
            prop_assert!(read.peak <= bound(f.bytes.len()), "peak {}", read.peak);
            prop_assert_eq!(read.same_prefix, read.blocks);
            match (&read.result, &f.outcome) {
                (Err(Error::CarIo { offset, .. }), _) => {
                    prop_assert!(*offset as usize <= fail_at, "{offset} > {fail_at}")
                }
                (Ok(v), Ok(clean)) => {
                    prop_assert_eq!(v, clean);
                    prop_assert!(fail_at as u64 >= f.consumed, "read past an I/O error");
                }
                (Err(Error::Car { .. }), Err(_)) => {}
                (other, clean) => {
                    prop_assert!(false, "{}: {other:?} (clean: {clean:?})", f.name)
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Bytes of a block's section, its length varint included.
fn section_len(b: &CarBlock) -> usize {
    let body = b.cid.encoded_len() + b.data.len();
    varint(body as u64).len() + body
}

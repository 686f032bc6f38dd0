//! Model-based test of the blob lifecycle: random sequences of put, put-with-links, pin,
//! unpin, temp pin / release, delete and gc, checked after every step against an in-memory
//! model. Deterministic: a fixed-seed runner with a bounded number of cases.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cid::Cid;
use ipld_core::ipld::Ipld;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngAlgorithm, TestRng, TestRunner};
use seedbank_blobstore::{codec, Blob, Config, Store};
use seedbank_index::{
    DeleteOptions, Error, GcOptions, Index, IndexConfig, IndexPutOptions, TempPin,
};

/// Blobs of the universe; blob `i` links to a fixed set of higher-numbered blobs, so the
/// link graph is a DAG with shared children.
const N: usize = 10;

fn links_of(i: usize) -> Vec<usize> {
    [i + 1, i * 2 + 3, i + 4]
        .into_iter()
        .filter(|&j| j > i && j < N)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Every blob of the universe, built bottom-up so each knows its children's CIDs.
fn universe() -> Vec<Blob> {
    let mut blobs: Vec<Option<Blob>> = vec![None; N];
    for i in (0..N).rev() {
        let links = links_of(i);
        let blob = if links.is_empty() {
            Blob::new(codec::RAW, format!("leaf {i}").into_bytes())
        } else {
            let ipld = Ipld::Map(BTreeMap::from([
                ("i".to_string(), Ipld::Integer(i as i128)),
                (
                    "l".to_string(),
                    Ipld::List(
                        links
                            .iter()
                            .map(|&j| Ipld::Link(*blobs[j].as_ref().unwrap().cid()))
                            .collect(),
                    ),
                ),
            ]));
            Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&ipld).unwrap())
        };
        blobs[i] = Some(blob);
    }
    blobs.into_iter().map(Option::unwrap).collect()
}

#[derive(Clone, Debug)]
enum Op {
    Put(usize),
    Pin(usize, usize),
    Unpin(usize),
    TempPut(usize, usize),
    Release(usize),
    Delete(usize, bool),
    Gc,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..N).prop_map(Op::Put),
        2 => (0..3usize, 0..N).prop_map(|(p, i)| Op::Pin(p, i)),
        1 => (0..3usize).prop_map(Op::Unpin),
        2 => (0..2usize, 0..N).prop_map(|(g, i)| Op::TempPut(g, i)),
        1 => (0..2usize).prop_map(Op::Release),
        2 => (0..N, any::<bool>()).prop_map(|(i, f)| Op::Delete(i, f)),
        2 => Just(Op::Gc),
    ]
}

#[derive(Default)]
struct Model {
    present: BTreeSet<usize>,
    pins: HashMap<usize, usize>,
    temp: HashMap<usize, BTreeSet<usize>>,
}

impl Model {
    /// What pins and temp pins protect: their roots, and what present blobs link to,
    /// transitively (links of absent blobs are unknown to the index).
    fn protected(&self) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<usize> = self
            .pins
            .values()
            .copied()
            .chain(self.temp.values().flatten().copied())
            .collect();
        while let Some(i) = stack.pop() {
            if out.insert(i) && self.present.contains(&i) {
                stack.extend(links_of(i));
            }
        }
        out
    }
}

async fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let blobs = universe();
    let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("m.db"), Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    let mut model = Model::default();
    let mut guards: HashMap<usize, TempPin> = HashMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op.clone() {
            Op::Put(i) => {
                index.put(blobs[i].clone()).await.unwrap();
                model.present.insert(i);
            }
            Op::Pin(p, i) => {
                index.pin(&format!("p{p}"), &cids[i]).await.unwrap();
                model.pins.insert(p, i);
            }
            Op::Unpin(p) => {
                let had = index.unpin(&format!("p{p}")).await.unwrap();
                prop_assert_eq!(had, model.pins.remove(&p).is_some());
            }
            Op::TempPut(g, i) => {
                let guard = guards.entry(g).or_insert_with(|| index.temp_pin());
                let opts = IndexPutOptions::default().temp_pin(guard);
                index.put_many(vec![blobs[i].clone()], opts).await.unwrap();
                model.temp.entry(g).or_default().insert(i);
                model.present.insert(i);
            }
            Op::Release(g) => {
                guards.remove(&g);
                model.temp.remove(&g);
            }
            Op::Delete(i, force) => {
                let opts = if force {
                    DeleteOptions::forced()
                } else {
                    DeleteOptions::default()
                };
                let got = index.delete(&[cids[i]], opts).await;
                if !force && model.protected().contains(&i) {
                    prop_assert!(
                        matches!(got, Err(Error::Pinned { .. })),
                        "step {}: {:?} not refused: {:?}",
                        step,
                        op,
                        got
                    );
                } else {
                    let freed = got.unwrap();
                    prop_assert_eq!(freed.blobs, u64::from(model.present.remove(&i)));
                }
            }
            Op::Gc => {
                let report = index.gc(GcOptions::default()).await.unwrap();
                let keep = model.protected();
                let before = model.present.len();
                model.present.retain(|i| keep.contains(i));
                prop_assert_eq!(report.blobs_freed as usize, before - model.present.len());
            }
        }
        let has = index.store().has_many(&cids).await.unwrap();
        let actual: BTreeSet<usize> = (0..N).filter(|&i| has[i]).collect();
        prop_assert_eq!(&actual, &model.present, "step {}: {:?}", step, op);
        for i in model.protected().intersection(&model.present) {
            let got = index.store().get(&cids[*i]).await.unwrap();
            prop_assert!(got.is_some(), "protected blob {} unreadable", i);
        }
    }
    let verified = index.store().verify().await.unwrap();
    prop_assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    index.store().close().await.unwrap();
    Ok(())
}

#[test]
fn lifecycle_matches_the_model() {
    let config = PropConfig {
        cases: 48,
        failure_persistence: None,
        ..PropConfig::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(run_case(ops))
        })
        .unwrap();
}

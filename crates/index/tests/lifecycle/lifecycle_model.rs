//! Model-based test of the blob lifecycle: seeded random interleavings of puts, re-puts,
//! pins (of stored and absent roots), scope pins and members, unpins, temp pins (of stored
//! and absent blobs) and their release, deletes, whole collections and collections driven
//! one sweep batch at a time with everything else running between batches. After every
//! step the store is checked against a simple reference:
//!
//! - everything reachable from a pin, a pinned scope's member or a temp pin, and everything
//!   put since the running collection started (with what it reaches), is stored;
//! - a collection deletes only blobs stored when it started, and by its end every such blob
//!   that nothing of the above reached at any step in between is gone.
//!
//! Deterministic: a fixed-seed runner. `SEEDBANK_MODEL_CASES` sets the number of cases
//! (default 2,000; the closing runs used 10,000). Red when the catch-up's re-expansion of
//! arriving keys or the put log is removed (`docs/testing.md`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cid::Cid;
use ipld_core::ipld::Ipld;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngAlgorithm, TestRng, TestRunner};
use seedbank_blobstore::{codec, Blob, Config, Store, Synchronous};
use seedbank_index::{
    Collection, DeleteOptions, Error, GcOptions, Index, IndexConfig, IndexPutOptions, TempPin,
};

/// Blobs of the universe; blob `i` links to a fixed set of higher-numbered blobs, so the
/// link graph is a DAG whose versions (roots 0, 1, 2, …) share children.
const N: usize = 12;
const SCOPE: &str = "s";

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
    PutScoped(usize),
    Pin(usize, usize),
    PinScope(usize),
    Unpin(usize),
    TempPut(usize, usize),
    TempAdd(usize, usize),
    Release(usize),
    Delete(usize, bool),
    /// A whole collection, or the end of the running one.
    Gc,
    /// Starts a collection swept `batch` candidates at a time (if none runs).
    GcStart(usize),
    /// One sweep batch of the running collection.
    GcStep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..N).prop_map(Op::Put),
        1 => (0..N).prop_map(Op::PutScoped),
        2 => (0..3usize, 0..N).prop_map(|(p, i)| Op::Pin(p, i)),
        1 => (0..3usize).prop_map(Op::PinScope),
        1 => (0..3usize).prop_map(Op::Unpin),
        2 => (0..2usize, 0..N).prop_map(|(g, i)| Op::TempPut(g, i)),
        1 => (0..2usize, 0..N).prop_map(|(g, i)| Op::TempAdd(g, i)),
        1 => (0..2usize).prop_map(Op::Release),
        2 => (0..N, any::<bool>()).prop_map(|(i, f)| Op::Delete(i, f)),
        1 => Just(Op::Gc),
        2 => (1..4usize).prop_map(Op::GcStart),
        4 => Just(Op::GcStep),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Root(usize),
    Scope,
}

/// A collection in progress and what the reference knows of it.
struct Running {
    /// `None` once it was finished.
    collection: Option<Collection>,
    /// Stored when it started: the only blobs it may delete.
    at_start: BTreeSet<usize>,
    /// Put (new or again) since it started.
    put_since: BTreeSet<usize>,
    /// Kept (see `Model::kept`) at some step since it started.
    ever_kept: BTreeSet<usize>,
    deleted: u64,
}

#[derive(Default)]
struct Model {
    present: BTreeSet<usize>,
    pins: HashMap<usize, Target>,
    members: BTreeSet<usize>,
    temp: HashMap<usize, BTreeSet<usize>>,
}

impl Model {
    /// What `roots` reach: themselves, and what present blobs link to, transitively (links
    /// of absent blobs are unknown to the index).
    fn closure(&self, roots: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<usize> = roots.into_iter().collect();
        while let Some(i) = stack.pop() {
            if out.insert(i) && self.present.contains(&i) {
                stack.extend(links_of(i));
            }
        }
        out
    }

    fn pin_roots(&self) -> Vec<usize> {
        let mut roots = Vec::new();
        for t in self.pins.values() {
            match t {
                Target::Root(i) => roots.push(*i),
                Target::Scope => roots.extend(self.members.iter().copied()),
            }
        }
        roots.extend(self.temp.values().flatten().copied());
        roots
    }

    /// What pins, pinned scopes and temp pins protect (what `delete` refuses).
    fn protected(&self) -> BTreeSet<usize> {
        self.closure(self.pin_roots())
    }

    /// What no collection may delete now: the protected blobs, and what was put since the
    /// running collection started.
    fn kept(&self, running: Option<&Running>) -> BTreeSet<usize> {
        let since = running.map(|r| r.put_since.clone()).unwrap_or_default();
        self.closure(self.pin_roots().into_iter().chain(since))
    }

    fn put(&mut self, i: usize, running: Option<&mut Running>) {
        self.present.insert(i);
        if let Some(r) = running {
            r.put_since.insert(i);
        }
    }
}

fn small_batches(batch: usize) -> GcOptions {
    GcOptions {
        batch_blobs: batch,
        ..Default::default()
    }
}

struct Case {
    index: Index,
    blobs: Vec<Blob>,
    cids: Vec<Cid>,
    model: Model,
    guards: HashMap<usize, TempPin>,
    running: Option<Running>,
}

impl Case {
    async fn stored(&self) -> BTreeSet<usize> {
        let has = self.index.store().has_many(&self.cids).await.unwrap();
        (0..N).filter(|&i| has[i]).collect()
    }

    /// Checks what a collection step deleted, and takes it into the model.
    async fn collected(
        &mut self,
        kept: &BTreeSet<usize>,
        step: usize,
    ) -> Result<(), TestCaseError> {
        let actual = self.stored().await;
        prop_assert!(
            actual.is_subset(&self.model.present),
            "step {step}: blobs appeared: {actual:?} vs {:?}",
            self.model.present
        );
        let deleted: BTreeSet<usize> = self.model.present.difference(&actual).copied().collect();
        let running = self.running.as_mut().expect("a collection runs");
        prop_assert!(
            deleted.is_disjoint(kept),
            "step {step}: deleted {:?}, which must be kept ({kept:?})",
            deleted.intersection(kept).collect::<Vec<_>>()
        );
        prop_assert!(
            deleted.is_subset(&running.at_start),
            "step {step}: deleted {deleted:?}, not stored when the collection started"
        );
        running.deleted += deleted.len() as u64;
        for i in &deleted {
            self.model.present.remove(i);
            self.model.members.remove(i);
        }
        Ok(())
    }

    async fn finish(&mut self, step: usize) -> Result<(), TestCaseError> {
        let kept = self.model.kept(self.running.as_ref());
        let running = self.running.as_mut().unwrap();
        running.ever_kept.extend(kept.iter().copied());
        let collection = running.collection.take().expect("not finished yet");
        let report = collection.finish().await.unwrap();
        self.collected(&kept, step).await?;
        let running = self.running.take().unwrap();
        // Everything stored at the start that nothing kept at any step is gone now.
        let garbage: BTreeSet<usize> = running
            .at_start
            .difference(&running.ever_kept)
            .copied()
            .collect();
        prop_assert!(
            garbage.is_disjoint(&self.model.present),
            "step {step}: garbage left: {:?}",
            garbage
                .intersection(&self.model.present)
                .collect::<Vec<_>>()
        );
        prop_assert_eq!(report.blobs_freed, running.deleted, "step {}", step);
        Ok(())
    }

    async fn apply(&mut self, op: Op, step: usize) -> Result<(), TestCaseError> {
        let index = self.index.clone();
        match op {
            Op::Put(i) => {
                index.put(self.blobs[i].clone()).await.unwrap();
                self.model.put(i, self.running.as_mut());
            }
            Op::PutScoped(i) => {
                let opts = IndexPutOptions::default().scope(SCOPE);
                index
                    .put_many(vec![self.blobs[i].clone()], opts)
                    .await
                    .unwrap();
                self.model.put(i, self.running.as_mut());
                self.model.members.insert(i);
            }
            Op::Pin(p, i) => {
                index.pin(&format!("p{p}"), &self.cids[i]).await.unwrap();
                self.model.pins.insert(p, Target::Root(i));
            }
            Op::PinScope(p) => {
                index.pin_scope(&format!("p{p}"), SCOPE).await.unwrap();
                self.model.pins.insert(p, Target::Scope);
            }
            Op::Unpin(p) => {
                let had = index.unpin(&format!("p{p}")).await.unwrap();
                prop_assert_eq!(had, self.model.pins.remove(&p).is_some());
            }
            Op::TempPut(g, i) => {
                let guard = self.guards.entry(g).or_insert_with(|| index.temp_pin());
                let opts = IndexPutOptions::default().temp_pin(guard);
                index
                    .put_many(vec![self.blobs[i].clone()], opts)
                    .await
                    .unwrap();
                self.model.temp.entry(g).or_default().insert(i);
                self.model.put(i, self.running.as_mut());
            }
            Op::TempAdd(g, i) => {
                let guard = self.guards.entry(g).or_insert_with(|| index.temp_pin());
                guard.add(&[self.cids[i]]);
                self.model.temp.entry(g).or_default().insert(i);
            }
            Op::Release(g) => {
                self.guards.remove(&g);
                self.model.temp.remove(&g);
            }
            Op::Delete(i, force) => {
                let opts = if force {
                    DeleteOptions::forced()
                } else {
                    DeleteOptions::default()
                };
                let got = index.delete(&[self.cids[i]], opts).await;
                if !force && self.model.protected().contains(&i) {
                    prop_assert!(
                        matches!(got, Err(Error::Pinned { .. })),
                        "step {}: not refused: {:?}",
                        step,
                        got
                    );
                } else {
                    let freed = got.unwrap();
                    prop_assert_eq!(freed.blobs, u64::from(self.model.present.remove(&i)));
                    self.model.members.remove(&i);
                }
            }
            Op::Gc if self.running.is_some() => self.finish(step).await?,
            Op::Gc => {
                self.start(GcOptions::default()).await;
                self.finish(step).await?;
            }
            Op::GcStart(batch) => {
                if self.running.is_none() {
                    self.start(small_batches(batch)).await;
                }
            }
            Op::GcStep => {
                if self.running.is_some() {
                    let kept = self.model.kept(self.running.as_ref());
                    let running = self.running.as_mut().unwrap();
                    running.ever_kept.extend(kept.iter().copied());
                    let collection = running.collection.as_mut().expect("running");
                    collection.sweep_batch().await.unwrap();
                    self.collected(&kept, step).await?;
                }
            }
        }
        if let Some(r) = self.running.as_mut() {
            r.ever_kept.extend(self.model.kept(Some(r)));
        }
        let actual = self.stored().await;
        prop_assert_eq!(&actual, &self.model.present, "step {}: {:?}", step, op);
        for i in self.model.protected().intersection(&self.model.present) {
            let got = index.store().get(&self.cids[*i]).await.unwrap();
            prop_assert!(got.is_some(), "protected blob {} unreadable", i);
        }
        Ok(())
    }

    async fn start(&mut self, opts: GcOptions) {
        let collection = self.index.begin_gc(opts).await.unwrap();
        self.running = Some(Running {
            collection: Some(collection),
            at_start: self.model.present.clone(),
            put_since: BTreeSet::new(),
            ever_kept: self.model.kept(None),
            deleted: 0,
        });
    }
}

async fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let blobs = universe();
    let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    let dir = tempfile::tempdir().unwrap();
    // Durability is not what this tests: no fsync per commit, so thousands of cases run.
    let config = Config {
        synchronous: Synchronous::Normal,
        checkpoint_interval: std::time::Duration::from_millis(1),
        ..Config::default()
    };
    let store = Store::open(dir.path().join("m.db"), config).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    let mut case = Case {
        index,
        blobs,
        cids,
        model: Model::default(),
        guards: HashMap::new(),
        running: None,
    };
    let steps = ops.len();
    for (step, op) in ops.into_iter().enumerate() {
        case.apply(op, step).await?;
    }
    if case.running.is_some() {
        case.finish(steps).await?;
    }
    let verified = case.index.store().verify().await.unwrap();
    prop_assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    case.index.store().close().await.unwrap();
    Ok(())
}

fn cases() -> u32 {
    std::env::var("SEEDBANK_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[test]
fn lifecycle_matches_the_model() {
    let config = PropConfig {
        cases: cases(),
        failure_persistence: None,
        ..PropConfig::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runner
        .run(&proptest::collection::vec(op(), 1..60), |ops| {
            rt.block_on(run_case(ops))
        })
        .unwrap();
}

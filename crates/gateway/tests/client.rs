//! Syncing from trustless gateways (`client::GatewayPeer`): from our own gateway (CAR
//! streams, raw stragglers, a partly stored DAG), and from hostile gateways — wrong bytes,
//! a block outside the DAG, a truncated CAR, a stall — each dropped for the run and scored,
//! the run completing from an honest gateway or reporting why it could not, and nothing
//! unverified or unrequested stored.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cid::Cid;
use common::Harness;
use futures_util::StreamExt as _;
use http::{header, StatusCode};
use seedbank_blobstore::{Blob, Config, Store};
use seedbank_discovery::{
    Discovery, DiscoveryConfig, Error, HavesCache, HavesConfig, Peer, Report, Scope, SessionOutcome,
};
use seedbank_files::testing::noise;
use seedbank_files::{AddOptions, Profile};
use seedbank_gateway::client::{GatewayClientConfig, GatewayPeer, Url};
use seedbank_index::testing::{leaves, node};
use seedbank_index::{car, Index, IndexConfig, IndexPutOptions};
use tokio::task::JoinHandle;

/// A fresh local store to sync into, and a discovery over it.
struct Local {
    _dir: tempfile::TempDir,
    index: Index,
    discovery: Discovery,
}

impl Local {
    async fn new(config: DiscoveryConfig) -> Local {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("local.db"), Config::default()).unwrap();
        let index = Index::open(store, IndexConfig::default()).await.unwrap();
        let discovery = Discovery::new(
            HavesCache::new(index.clone(), HavesConfig::default()),
            config,
        );
        Local {
            _dir: dir,
            index,
            discovery,
        }
    }

    async fn sync(&self, root: Cid, peers: &[Arc<GatewayPeer>]) -> Result<Report, Error> {
        let peers: Vec<Arc<dyn Peer>> = peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect();
        seedbank_blobstore::testing::bounded(
            "sync",
            self.discovery.discover(&Scope::dag(root), &peers),
        )
        .await
    }

    /// Blobs stored here: each re-hashed (none corrupt), all of them blocks of `dag`.
    async fn check_stored(&self, dag: &HashSet<Cid>) -> u64 {
        let report = self.index.store().verify_blobs().await.unwrap();
        assert!(
            report.corrupt.is_empty() && report.problems.is_empty(),
            "{report:?}"
        );
        let in_dag = dag_stored(&self.index, dag).await.len() as u64;
        assert_eq!(
            report.blobs_checked, in_dag,
            "only blocks of the DAG are stored"
        );
        assert!(!self.index.store().has(stranger().cid()).await.unwrap());
        report.blobs_checked
    }

    async fn stop(self) {
        self.index.store().close().await.unwrap();
    }
}

async fn dag_stored(index: &Index, dag: &HashSet<Cid>) -> Vec<Cid> {
    let cids: Vec<Cid> = dag.iter().copied().collect();
    let has = index.store().has_many(&cids).await.unwrap();
    cids.into_iter()
        .zip(has)
        .filter(|(_, h)| *h)
        .map(|(c, _)| c)
        .collect()
}

fn gateway(base: &str, tweak: impl FnOnce(&mut GatewayClientConfig)) -> Arc<GatewayPeer> {
    let mut config = GatewayClientConfig::default();
    config.idle_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    tweak(&mut config);
    Arc::new(GatewayPeer::new(Url::parse(base).unwrap(), config).unwrap())
}

/// The CIDs of `root`'s DAG in `index` (root included).
async fn dag_of(index: &Index, root: &Cid) -> HashSet<Cid> {
    let mut all: HashSet<Cid> = common::descendants(index, root).await.into_iter().collect();
    all.insert(*root);
    all
}

/// A two-level DAG-CBOR tree: a root, 4 inner nodes, 40 raw leaves under each.
async fn two_level(index: &Index) -> Cid {
    let mut inner = Vec::new();
    let mut blobs = Vec::new();
    for i in 0..4 {
        let l = leaves(&format!("inner {i}"), 40);
        let n = node(&format!("inner {i}"), &seedbank_index::testing::cids(&l));
        inner.push(*n.cid());
        blobs.extend(l);
        blobs.push(n);
    }
    let root = node("root", &inner);
    let cid = *root.cid();
    blobs.push(root);
    index
        .put_many(
            blobs,
            IndexPutOptions::new(seedbank_blobstore::Priority::Normal, "test"),
        )
        .await
        .unwrap();
    cid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unixfs_file_comes_in_one_car_stream() {
    let gw = Harness::start(|_| {}).await;
    for (profile, seed) in [(Profile::KuboCidV1, 1), (Profile::UnixfsV0_2015, 2)] {
        let data = noise(3 << 20, seed);
        let added = gw
            .files()
            .add_reader(&data[..], &AddOptions::new(profile))
            .await
            .unwrap();
        let dag = dag_of(&gw.index, &added.root).await;
        assert!(dag.len() > 10, "a multi-block file");

        let local = Local::new(DiscoveryConfig::default()).await;
        let peer = gateway(&gw.base, |_| {});
        let report = local
            .sync(added.root, std::slice::from_ref(&peer))
            .await
            .unwrap();
        assert!(report.complete, "{report}");
        assert_eq!(report.blobs_fetched, dag.len() as u64);
        assert_eq!(local.check_stored(&dag).await, dag.len() as u64);
        let stats = peer.stats();
        assert_eq!(
            (stats.car_requests, stats.raw_requests),
            (1, 0),
            "{stats:?}"
        );
        assert_eq!(stats.streamed_blocks, dag.len() as u64);

        // The file reads back whole.
        let mut reader = seedbank_files::Files::new(local.index.clone())
            .cat(&added.root, 0, None)
            .await
            .unwrap();
        let mut back = Vec::new();
        while let Some(chunk) = reader.next_chunk().await.unwrap() {
            back.extend_from_slice(&chunk);
        }
        assert!(back == data, "{profile:?} file differs");
        local.stop().await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_level_dag_streams_and_stragglers_go_raw() {
    let gw = Harness::start(|_| {}).await;
    let root = two_level(&gw.index).await;
    let dag = dag_of(&gw.index, &root).await;
    assert_eq!(dag.len(), 1 + 4 + 160);

    // Default look-ahead: the stream follows the run's order.
    let local = Local::new(DiscoveryConfig::default()).await;
    let peer = gateway(&gw.base, |_| {});
    let report = local.sync(root, std::slice::from_ref(&peer)).await.unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(local.check_stored(&dag).await, dag.len() as u64);
    assert_eq!(peer.stats().car_requests, 1, "{:?}", peer.stats());
    local.stop().await;

    // No look-ahead: blocks the stream brings out of the run's order are dropped, and
    // those the run asks for that the stream does not reach come by raw requests.
    let local = Local::new(DiscoveryConfig::default()).await;
    let peer = gateway(&gw.base, |c| c.lookahead_bytes = 0);
    let report = local.sync(root, std::slice::from_ref(&peer)).await.unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(report.blobs_fetched, dag.len() as u64);
    assert_eq!(local.check_stored(&dag).await, dag.len() as u64);
    let stats = peer.stats();
    assert!(stats.raw_requests > 0 && stats.raw_blocks > 0, "{stats:?}");
    assert_eq!(stats.streamed_blocks + stats.raw_blocks, dag.len() as u64);
    local.stop().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_missing_part_of_a_dag_is_fetched() {
    let gw = Harness::start(|_| {}).await;
    let root = two_level(&gw.index).await;
    let dag = dag_of(&gw.index, &root).await;
    let local = Local::new(DiscoveryConfig::default()).await;
    // The local store holds one inner node's subtree already.
    let inner = gw.index.links(&root).await.unwrap().unwrap()[1];
    let mut have = vec![inner];
    have.extend(gw.index.links(&inner).await.unwrap().unwrap());
    let mut blobs = Vec::new();
    for cid in &have {
        let data = gw.index.store().get(cid).await.unwrap().unwrap();
        blobs.push(Blob::with_cid(*cid, data).unwrap());
    }
    local
        .index
        .put_many(
            blobs,
            IndexPutOptions::new(seedbank_blobstore::Priority::Normal, "test"),
        )
        .await
        .unwrap();

    let peer = gateway(&gw.base, |_| {});
    let report = local.sync(root, std::slice::from_ref(&peer)).await.unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(report.blobs_fetched, (dag.len() - have.len()) as u64);
    assert_eq!(local.check_stored(&dag).await, dag.len() as u64);
    local.stop().await;
    gw.stop().await;
}

/// How a hostile gateway misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lie {
    /// One block's bytes changed in the CAR.
    WrongBytes,
    /// A valid block outside the DAG slipped into the CAR.
    ExtraBlock,
    /// The CAR ends cleanly after a few blocks.
    TruncatedAtBlock,
    /// The CAR ends in the middle of a block.
    TruncatedMidBlock,
    /// The CAR stops after a few blocks and the connection stays open.
    StallBody,
    /// No response at all.
    StallHeaders,
    /// No CAR (406); raw blocks with wrong bytes.
    WrongRaw,
}

/// A block no DAG here links to.
fn stranger() -> Blob {
    Blob::new(seedbank_blobstore::codec::RAW, b"not in any DAG".to_vec())
}

struct Hostile {
    base: String,
    server: JoinHandle<()>,
}

impl Hostile {
    /// A gateway serving `index`'s blocks, lying as `lie` says.
    async fn start(index: Index, lie: Lie) -> Hostile {
        let app = axum::Router::new()
            .route("/ipfs/{cid}", axum::routing::get(hostile))
            .with_state((index, lie));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hostile { base, server }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn hostile(
    State((index, lie)): State<(Index, Lie)>,
    Path(cid): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let cid = Cid::try_from(cid.as_str()).unwrap();
    let query = query.unwrap_or_default();
    if lie == Lie::StallHeaders {
        std::future::pending::<()>().await;
    }
    if query.contains("format=raw") {
        let Some(blob) = index.store().get(&cid).await.unwrap() else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let mut data = blob.to_vec();
        if lie == Lie::WrongRaw {
            data.push(0);
        }
        return ([(header::CONTENT_TYPE, "application/vnd.ipld.raw")], data).into_response();
    }
    if lie == Lie::WrongRaw {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    let mut exported = Vec::new();
    car::export_dag(&index, &cid, &mut exported).await.unwrap();
    let mut reader = car::CarReader::new(&exported[..], 4 << 20).await.unwrap();
    let mut blocks = Vec::new();
    while let Some(b) = reader.next_block().await.unwrap() {
        blocks.push((b.cid, b.data));
    }
    match lie {
        Lie::WrongBytes => {
            let last = blocks.len() - 1;
            let mut data = blocks[last].1.to_vec();
            data[0] ^= 1;
            blocks[last].1 = Bytes::from(data);
        }
        Lie::ExtraBlock => {
            let extra = stranger();
            blocks.insert(1, (*extra.cid(), extra.data().clone()));
        }
        Lie::TruncatedAtBlock | Lie::StallBody => blocks.truncate(3),
        _ => {}
    }
    let mut writer = car::CarWriter::new(Vec::new(), &[cid]).await.unwrap();
    for (c, d) in &blocks {
        writer.write_block(c, d).await.unwrap();
    }
    let mut body = writer.finish().await.unwrap();
    if lie == Lie::TruncatedMidBlock {
        body.truncate(body.len() - 5);
    }
    let content_type = "application/vnd.ipld.car; version=1; order=dfs; dups=n";
    if lie == Lie::StallBody {
        let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))])
            .chain(futures_util::stream::pending());
        return (
            [(header::CONTENT_TYPE, content_type)],
            Body::from_stream(chunks),
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The error a hostile gateway must be dropped with.
fn expected_error(lie: Lie, err: &Error) -> bool {
    match lie {
        Lie::WrongBytes | Lie::WrongRaw => matches!(err, Error::HashMismatch { .. }),
        Lie::ExtraBlock => {
            matches!(err, Error::Protocol { reason, .. } if reason.contains("not in the DAG"))
        }
        Lie::TruncatedAtBlock | Lie::TruncatedMidBlock => matches!(err, Error::Transport { .. }),
        Lie::StallBody | Lie::StallHeaders => matches!(err, Error::Timeout { .. }),
    }
}

/// How its session must end: as a liar's, a failed or a timed-out peer's.
fn expected_outcome(lie: Lie, outcome: &SessionOutcome) -> bool {
    match lie {
        Lie::WrongBytes | Lie::WrongRaw | Lie::ExtraBlock => {
            matches!(outcome, SessionOutcome::Liar(_))
        }
        Lie::TruncatedAtBlock | Lie::TruncatedMidBlock => {
            matches!(outcome, SessionOutcome::Failed(_))
        }
        Lie::StallBody | Lie::StallHeaders => matches!(outcome, SessionOutcome::TimedOut),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_gateway_is_dropped_and_an_honest_one_completes_the_run() {
    let gw = Harness::start(|_| {}).await;
    let data = noise(2 << 20, 7);
    let added = gw
        .files()
        .add_reader(&data[..], &AddOptions::new(Profile::KuboCidV1))
        .await
        .unwrap();
    let root = added.root;
    let dag = dag_of(&gw.index, &root).await;
    for lie in [
        Lie::WrongBytes,
        Lie::ExtraBlock,
        Lie::TruncatedAtBlock,
        Lie::TruncatedMidBlock,
        Lie::StallBody,
        Lie::StallHeaders,
        Lie::WrongRaw,
    ] {
        let bad = Hostile::start(gw.index.clone(), lie).await;

        // Alone: the run cannot complete, and says why.
        let local = Local::new(DiscoveryConfig::default()).await;
        let liar = gateway(&bad.base, |_| {});
        let result = local.sync(root, std::slice::from_ref(&liar)).await;
        let err = liar
            .dropped()
            .unwrap_or_else(|| panic!("{lie:?} not dropped: {result:?}"));
        assert!(expected_error(lie, &err), "{lie:?}: {err}");
        match result {
            Ok(report) => {
                // The blocks before the lie were verified and stored; the rest is missing.
                assert!(!report.complete, "{lie:?}");
                assert!(report.blobs_fetched > 0);
                let outcome = &report.sessions[0].outcome;
                assert!(expected_outcome(lie, outcome), "{lie:?}: {outcome:?}");
            }
            // The first answer was condemned whole: nothing stored.
            Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("{lie:?}: {e}"),
        }
        // Nothing unverified, nothing outside the DAG.
        local.check_stored(&dag).await;
        // A dropped gateway stays dropped for the run.
        assert!(liar.fetch(&[root]).await.is_err());
        local.stop().await;

        // With an honest gateway after it in the same run: complete, the liar scored.
        let local = Local::new(DiscoveryConfig {
            concurrency: 1,
            ..DiscoveryConfig::default()
        })
        .await;
        let liar = gateway(&bad.base, |_| {});
        let honest = gateway(&gw.base, |_| {});
        let report = local.sync(root, &[liar.clone(), honest]).await.unwrap();
        assert!(report.complete, "{lie:?}: {report}");
        assert!(expected_error(lie, &liar.dropped().expect("dropped")));
        let outcome = &report.sessions[0].outcome;
        assert!(expected_outcome(lie, outcome), "{lie:?}: {outcome:?}");
        match lie {
            Lie::WrongBytes | Lie::WrongRaw | Lie::ExtraBlock => assert_eq!(report.liars, 1),
            Lie::StallBody | Lie::StallHeaders => assert_eq!(report.timeouts, 1),
            _ => assert_eq!(report.peers_failed, 1),
        }
        assert_eq!(local.check_stored(&dag).await, dag.len() as u64);
        local.stop().await;
    }
    gw.stop().await;
}

//! A run's own limits: open wants (a link-dense document cannot exhaust the syncing node),
//! an overall deadline, and configuration values that would lift the wire caps.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::testing::{Hook, Hooked};
use seedbank_discovery::{
    DiscoveryConfig, Error, Peer, Progress, ResponderConfig, Result, Scope, SessionOutcome,
};
use seedbank_sim::Behavior;
use tokio::sync::broadcast::error::TryRecvError;

/// A DAG-CBOR block linking to `links`.
fn block(name: &str, links: &[Cid]) -> Blob {
    let map = Ipld::Map(BTreeMap::from([
        ("name".to_string(), Ipld::String(name.into())),
        (
            "links".to_string(),
            Ipld::List(links.iter().map(|c| Ipld::Link(*c)).collect()),
        ),
    ]));
    Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&map).unwrap())
}

/// CIDs of blocks nobody stores.
fn nowhere(tag: &str, n: usize) -> Vec<Cid> {
    raw_blobs(tag, 0, n).iter().map(|b| *b.cid()).collect()
}

/// Every event received so far.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<Progress>) -> Vec<Progress> {
    let mut events = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(event) => events.push(event),
            Err(TryRecvError::Lagged(_)) => continue,
            Err(_) => return events,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_link_dense_dag_stops_the_run_at_its_open_want_limit() {
    const LIMIT: usize = 1_000;
    let mut net = Net::new();
    // Four DAG-CBOR blocks of 3,000 links each, to blocks nobody has: 12,000 wants.
    let inner: Vec<Blob> = (0..4)
        .map(|i| block(&format!("dense{i}"), &nowhere(&format!("x{i}"), 3_000)))
        .collect();
    let root = block("root", &inner.iter().map(|b| *b.cid()).collect::<Vec<_>>());
    let mut blobs = vec![root.clone()];
    blobs.extend(inner);
    let peer = net
        .peer("dense", Behavior::Honest, ms(5), blobs, None)
        .await;
    let client = net.node().await;
    let discovery = client.discovery(DiscoveryConfig {
        max_open_wants: LIMIT,
        ..config()
    });
    let mut progress = discovery.progress();
    let result = discovery
        .discover(
            &Scope::dag(*root.cid()),
            &dyn_peers(std::slice::from_ref(&peer)),
        )
        .await;
    let Err(Error::TooManyWants { limit, report }) = result else {
        panic!("expected TooManyWants, got {result:?}");
    };
    assert_eq!(limit, LIMIT);
    assert!(!report.complete);
    // What was fetched before the stop is stored and reported.
    assert!(report.blobs_fetched >= 2, "{report}");
    assert!(client.store().has(root.cid()).await.unwrap());
    // Open wants (known, not fetched) never passed the limit.
    let events = drain(&mut progress);
    assert!(events.last().is_some_and(|e| e.finished));
    for e in &events {
        let open = e.wanted - e.blobs_fetched;
        assert!(open <= LIMIT as u64, "{open} open wants: {e:?}");
    }
    // The run stopped at once: nobody was probed for the wants past the limit.
    assert!(
        peer.fetches() <= 3 + (LIMIT / config().fetch_batch) as u64,
        "{} fetches",
        peer.fetches()
    );
}

/// An honest peer whose fetches never answer after its first `answered` ones.
struct HangsAfter {
    answered: u64,
    fetches: AtomicU64,
}

#[async_trait::async_trait]
impl Hook for HangsAfter {
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        if self.fetches.fetch_add(1, SeqCst) >= self.answered {
            std::future::pending::<()>().await;
        }
        inner.fetch(cids).await
    }
}

// Real time: the deadline must not fire while the clock is paused and the runtime waits
// for the store's writer thread (auto-advance would jump to it). Nothing here asserts a
// duration: the peer stops answering after two fetches and no session timeout is shorter
// than the run's, so only `run_timeout` can end the run.
#[tokio::test]
async fn a_run_stops_at_its_timeout_with_what_it_stored() {
    let mut net = Net::new();
    let dag = dag(31, 8, 40);
    let inner = net
        .peer("stalls", Behavior::Honest, ms(0), dag.blocks(), None)
        .await;
    let stalls: Arc<dyn Peer> = Arc::new(Hooked::new(
        inner,
        HangsAfter {
            answered: 2,
            fetches: AtomicU64::new(0),
        },
    ));
    let client = net.node().await;
    let timeout = Duration::from_secs(2);
    let discovery = client.discovery(DiscoveryConfig {
        round_timeout: Duration::from_secs(600),
        peer_timeout: Duration::from_secs(600),
        run_timeout: Some(timeout),
        ..config()
    });
    let scope = Scope::dag(dag.root_cid());
    // The bound only keeps a broken build from hanging the suite.
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        discovery.discover(&scope, &[stalls]),
    )
    .await
    .expect("the run stops at its run_timeout");
    let Err(Error::RunTimedOut {
        timeout: reported,
        report,
    }) = result
    else {
        panic!("expected RunTimedOut, got {result:?}");
    };
    assert_eq!(reported, timeout);
    assert!(!report.complete);
    // The root and its 8 branches came in the two fetches answered; then the stall.
    assert_eq!(report.blobs_fetched, 9, "{report}");
    assert_eq!(report.sessions.len(), 1);
    assert_eq!(report.sessions[0].outcome, SessionOutcome::Cancelled);
    // Nothing was lost: an honest peer completes the rest, each block fetched once.
    let honest = net
        .peer("honest", Behavior::Honest, ms(0), dag.blocks(), None)
        .await;
    let rest = client
        .discovery(config())
        .discover(&scope, &dyn_peers(&[honest]))
        .await
        .unwrap();
    assert!(rest.complete, "{rest}");
    assert_eq!(report.blobs_fetched + rest.blobs_fetched, dag.len() as u64);
    assert_dag_complete(&client, &dag).await;
}

#[tokio::test(start_paused = true)]
async fn frame_limit_zero_is_a_config_error_not_unlimited_frames() {
    let mut net = Net::new();
    let peer = net
        .peer(
            "p",
            Behavior::Honest,
            ms(5),
            raw_blobs("d", 0, 50),
            Some("doc"),
        )
        .await;
    let client = net.node().await;
    for frame_limit in [0, 100, DiscoveryConfig::MAX_FRAME_LIMIT + 1] {
        let config = DiscoveryConfig {
            frame_limit,
            ..config()
        };
        let refused = config.validate();
        assert!(
            matches!(
                &refused,
                Err(Error::Config {
                    field: "frame_limit",
                    ..
                })
            ),
            "{refused:?}"
        );
        let result = client
            .discovery(config)
            .discover(
                &Scope::named("doc"),
                &dyn_peers(std::slice::from_ref(&peer)),
            )
            .await;
        assert!(
            matches!(
                &result,
                Err(Error::Config {
                    field: "frame_limit",
                    ..
                })
            ),
            "{result:?}"
        );
    }
    assert_eq!(peer.messages(), 0, "a misconfigured run sends nothing");
    let zero = ResponderConfig {
        frame_limit: 0,
        ..ResponderConfig::default()
    };
    assert!(matches!(
        zero.validate(),
        Err(Error::Config {
            field: "frame_limit",
            ..
        })
    ));
    assert!(DiscoveryConfig::default().validate().is_ok());
    assert!(ResponderConfig::default().validate().is_ok());
}

//! Blocks a run finds stored here already are the run's to rely on: it temp-pins them
//! before it checks, so a collection during the run cannot take them and leave a
//! "complete" scope or DAG with a hole. The peer below runs a whole collection on the
//! client before answering each fetch: the worst moment, deterministically.

use std::sync::Arc;

use crate::common::*;
use bytes::Bytes;
use cid::Cid;

use seedbank_discovery::testing::{Hook, Hooked};
use seedbank_discovery::{Peer, Result, Scope};
use seedbank_index::testing::{cids, node};
use seedbank_index::{GcOptions, Index};
use seedbank_sim::Behavior;

/// Runs a whole collection on `client` before each fetch it forwards to `inner`.
struct CollectsBeforeFetch {
    client: Index,
}

#[async_trait::async_trait]
impl Hook for CollectsBeforeFetch {
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        self.client.gc(GcOptions::default()).await.unwrap();
        inner.fetch(cids).await
    }
}

/// The client holds half of a named scope's members (stored, unpinned, not members); the
/// peer, trusted with membership, offers all of them.
#[tokio::test]
async fn members_stored_here_already_survive_a_collection_during_the_run() {
    let mut net = Net::new();
    let members = raw_blobs("member", 0, 40);
    let peer = net
        .peer("p", Behavior::Honest, ms(0), members.clone(), Some("s"))
        .await;
    let client = net.node().await;
    client.put(members[..20].to_vec(), None).await.unwrap();
    let peer: Arc<dyn Peer> = Arc::new(Hooked::new(
        peer,
        CollectsBeforeFetch {
            client: client.index.clone(),
        },
    ));
    // Trusted peers: members stored here join without a fetch, so the run relies on them.
    let trusting = seedbank_discovery::DiscoveryConfig {
        trust_named_members: true,
        ..config()
    };
    let report = client
        .discovery(trusting)
        .discover(&Scope::named("s"), &[peer])
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    let stored = client.store().has_many(&cids(&members)).await.unwrap();
    let lost = stored.iter().filter(|&&s| !s).count();
    assert_eq!(lost, 0, "complete, yet {lost} members are gone: {report}");
    assert_eq!(client.index.scope_members("s").await.unwrap().len(), 40);
}

/// The client holds a DAG's root and one branch (unpinned); the peer has the other branch.
#[tokio::test]
async fn a_dag_stored_here_in_part_survives_a_collection_during_the_run() {
    let mut net = Net::new();
    let (here, there) = (raw_blobs("here", 0, 30), raw_blobs("there", 0, 30));
    let (a, b) = (node("a", &cids(&here)), node("b", &cids(&there)));
    let root = node("root", &[*a.cid(), *b.cid()]);
    let mut all = vec![root.clone(), a.clone(), b.clone()];
    all.extend(here.iter().cloned());
    all.extend(there.iter().cloned());
    let peer = net
        .peer("p", Behavior::Honest, ms(0), all.clone(), None)
        .await;
    let client = net.node().await;
    let mut local = vec![root.clone(), a];
    local.extend(here);
    client.put(local, None).await.unwrap();
    let peer: Arc<dyn Peer> = Arc::new(Hooked::new(
        peer,
        CollectsBeforeFetch {
            client: client.index.clone(),
        },
    ));
    let report = client
        .discovery(config())
        .discover(&Scope::dag(*root.cid()), &[peer])
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    let missing = client.index.missing(root.cid()).await.unwrap();
    assert!(
        missing.is_empty(),
        "complete, yet {} missing: {report}",
        missing.len()
    );
    let stored = client.store().has_many(&cids(&all)).await.unwrap();
    assert!(stored.iter().all(|&s| s), "{report}");
    // Nothing fetched twice: what was here stayed here.
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.blobs_fetched, 31, "{report}");
}

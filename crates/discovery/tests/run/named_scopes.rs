//! What a named scope's membership and completeness rest on (issue 23, item 5).
//!
//! A named scope has no member list to check against, so a run takes membership from
//! peers. The rule a `ServePolicy` can rely on: a run makes a blob a member only if a peer
//! *sent* its bytes in that run. A peer that merely names a hash — of a blob stored here
//! outside the scope (a private one), or of its bytes under another codec — adds nothing to
//! the scope (unless `DiscoveryConfig::trust_named_members` says the peers are trusted).
//! And a scope is complete only when no contacted peer is still at work: the first peer to
//! finish does not decide for the others.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::testing::bounded;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::testing::{Hook, Hooked};
use seedbank_discovery::{DiscoveryConfig, Message, Peer, Result, Scope};
use seedbank_sim::Behavior;
use tokio::sync::watch;

/// Answers reconciliations honestly, but never sends the bytes of `withheld`: it knows the
/// hash, not the content (a peer naming somebody else's private blob).
struct NamesWithoutSending {
    withheld: Vec<Cid>,
}

#[async_trait::async_trait]
impl Hook for NamesWithoutSending {
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        let asked: Vec<Cid> = cids
            .iter()
            .filter(|c| !self.withheld.contains(c))
            .copied()
            .collect();
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        inner.fetch(&asked).await
    }
}

fn private_blob() -> Blob {
    Blob::new(codec::RAW, &b"the client's private notes"[..])
}

/// The peer's scope "s" holds two public blobs and the client's private blob (whose hash it
/// learned somehow); it never sends the private blob's bytes.
async fn naming_peer(net: &mut Net, named: Blob) -> (Arc<dyn Peer>, Vec<Blob>) {
    let public = raw_blobs("public", 0, 2);
    let mut scope = public.clone();
    scope.push(named.clone());
    let inner = net
        .peer("namer", Behavior::Honest, ms(0), scope, Some("s"))
        .await;
    let peer = Arc::new(Hooked::new(
        inner,
        NamesWithoutSending {
            withheld: vec![*named.cid()],
        },
    ));
    (peer, public)
}

#[tokio::test]
async fn a_peer_naming_a_private_blob_stored_here_does_not_make_it_a_member() {
    let mut net = Net::new();
    let private = private_blob();
    let (peer, public) = naming_peer(&mut net, private.clone()).await;
    let client = net.node().await;
    client.put(vec![private.clone()], None).await.unwrap();

    let report = client
        .discovery(config())
        .discover(&Scope::named("s"), &[peer])
        .await
        .unwrap();

    let members = client.index.scope_members("s").await.unwrap();
    assert!(
        !members.contains(private.cid()),
        "a blob the peer never sent joined the scope: {report}"
    );
    assert_eq!(members.len(), public.len(), "{report}");
    assert!(client.store().has(private.cid()).await.unwrap());
    assert_eq!(report.memberships_added, 0, "{report}");
    assert!(
        !report.complete,
        "the peer withheld a member it named: {report}"
    );
}

#[tokio::test]
async fn a_peer_naming_local_bytes_under_another_codec_does_not_make_them_a_member() {
    let mut net = Net::new();
    let private = private_blob();
    // The same bytes under DAG-CBOR: one multihash, another CID.
    let renamed = Blob::with_cid(
        Cid::new_v1(codec::DAG_CBOR, *private.cid().hash()),
        private.data().clone(),
    )
    .unwrap();
    let (peer, public) = naming_peer(&mut net, renamed.clone()).await;
    let client = net.node().await;
    client.put(vec![private.clone()], None).await.unwrap();

    let report = client
        .discovery(config())
        .discover(&Scope::named("s"), &[peer])
        .await
        .unwrap();

    let members = client.index.scope_members("s").await.unwrap();
    assert!(
        !members.contains(renamed.cid()) && !members.contains(private.cid()),
        "local bytes joined the scope under a name the peer chose: {report}"
    );
    assert_eq!(members.len(), public.len(), "{report}");
    assert_eq!(report.adopted, 0, "{report}");
}

#[tokio::test]
async fn a_blob_stored_here_joins_the_scope_once_a_peer_sends_it() {
    let mut net = Net::new();
    let members = raw_blobs("m", 0, 10);
    let peer = net
        .peer("p", Behavior::Honest, ms(0), members.clone(), Some("s"))
        .await;
    let client = net.node().await;
    // Stored here outside the scope: the peer has to prove it holds them by sending them.
    client.put(members[..4].to_vec(), None).await.unwrap();

    let report = client
        .discovery(config())
        .discover(&Scope::named("s"), &dyn_peers(std::slice::from_ref(&peer)))
        .await
        .unwrap();

    assert!(report.complete, "{report}");
    assert_eq!(client.index.scope_members("s").await.unwrap().len(), 10);
    assert_eq!(peer.sent().len(), 10, "{report}");
    assert_eq!(report.memberships_added, 0);
}

#[tokio::test]
async fn trusted_peers_add_members_stored_here_without_sending_them() {
    let mut net = Net::new();
    let members = raw_blobs("m", 0, 10);
    let peer = net
        .peer("p", Behavior::Honest, ms(0), members.clone(), Some("s"))
        .await;
    let client = net.node().await;
    client.put(members[..4].to_vec(), None).await.unwrap();

    let trusting = DiscoveryConfig {
        trust_named_members: true,
        ..config()
    };
    let report = client
        .discovery(trusting)
        .discover(&Scope::named("s"), &dyn_peers(std::slice::from_ref(&peer)))
        .await
        .unwrap();

    assert!(report.complete, "{report}");
    assert_eq!(client.index.scope_members("s").await.unwrap().len(), 10);
    assert_eq!(peer.sent().len(), 6, "{report}");
    assert_eq!(report.memberships_added, 4);
}

/// Its peer's first reconciliation waits until `open` turns true.
struct Gated {
    open: watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl Hook for Gated {
    async fn reconcile(
        &self,
        inner: &dyn Peer,
        scope: &Scope,
        message: Message,
    ) -> Result<Message> {
        let _ = self.open.clone().wait_for(|open| *open).await;
        inner.reconcile(scope, message).await
    }
}

/// Says when a fetch of its peer has been answered.
struct Signals {
    fetched: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl Hook for Signals {
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        let answer = inner.fetch(cids).await;
        self.fetched.send_replace(true);
        answer
    }
}

/// Peer "fast" holds 5 members of a scope and finishes first; peer "slow" holds all 20 but
/// answers its first round only after "fast" was served (and its session had time to end).
/// The run is complete only with slow's members: fast's word alone did not end it.
#[tokio::test]
async fn the_first_peer_to_finish_does_not_end_a_named_run_while_another_is_at_work() {
    let mut net = Net::new();
    let all = raw_blobs("doc", 0, 20);
    let fast = net
        .peer(
            "fast",
            Behavior::Honest,
            ms(0),
            all[..5].to_vec(),
            Some("doc"),
        )
        .await;
    let slow = net
        .peer("slow", Behavior::Honest, ms(0), all.clone(), Some("doc"))
        .await;
    let (tx, rx) = watch::channel(false);
    let mut fast_done = rx.clone();
    let (gate_tx, gate_rx) = watch::channel(false);
    // Opens the gate a while after fast's fetch was answered: long after its session ended.
    let opener = tokio::spawn(async move {
        let _ = fast_done.wait_for(|done| *done).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        gate_tx.send_replace(true);
        gate_tx
    });
    drop(rx);
    let peers: Vec<Arc<dyn Peer>> = vec![
        Arc::new(Hooked::new(fast, Signals { fetched: tx })),
        Arc::new(Hooked::new(slow, Gated { open: gate_rx })),
    ];
    let client = net.node().await;
    let report = bounded(
        "a named run with a slow peer",
        client
            .discovery(config())
            .discover(&Scope::named("doc"), &peers),
    )
    .await
    .unwrap();
    opener.abort();

    let members = client.index.scope_members("doc").await.unwrap();
    assert_eq!(members.len(), 20, "{report}");
    assert!(report.complete, "{report}");
    assert_eq!(report.blobs_fetched, 20, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_does_not_keep_a_named_run_from_completing() {
    let mut net = Net::new();
    let all = raw_blobs("doc", 0, 20);
    let honest = net
        .peer("honest", Behavior::Honest, ms(5), all.clone(), Some("doc"))
        .await;
    let hanging = storeless("hanging", Behavior::Hanging, ms(0));
    let client = net.node().await;
    let report = client
        .discovery(config())
        .discover(&Scope::named("doc"), &dyn_peers(&[honest, hanging]))
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(report.blobs_fetched, 20);
    assert_eq!(report.timeouts, 1, "{report}");
}

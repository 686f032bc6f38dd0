//! Peer exchange obeys the serving policy: a policy that does not say otherwise hands the
//! known peers to nobody; `ServeAll` to everyone (but the asker). Real QUIC on 127.0.0.1.

use std::sync::Arc;

use seedbank_discovery::ResponderConfig;
use seedbank_net::{Node, NodeConfig, ServePolicy, Ticket};

/// Reads everything, says nothing about peer exchange (so: no peers for anyone).
struct ReadsOnly;

impl ServePolicy for ReadsOnly {}

async fn node(dir: &tempfile::TempDir, name: &str, policy: Option<Arc<dyn ServePolicy>>) -> Node {
    let store = crate::open(dir, name).await;
    let local = Arc::new(store.responder(name, ResponderConfig::default()));
    match policy {
        Some(policy) => Node::spawn_with_policy(local, policy, NodeConfig::default()).await,
        None => Node::spawn(local, NodeConfig::default()).await,
    }
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_does_not_allow_peer_exchange_hands_out_no_peers() {
    let dir = tempfile::tempdir().unwrap();
    let known = node(&dir, "known", None).await;
    let asker = node(&dir, "asker", None).await;
    let restricted = node(&dir, "restricted", Some(Arc::new(ReadsOnly))).await;
    let open = node(&dir, "open", None).await;
    for n in [&restricted, &open] {
        n.add_known_peer(known.ticket());
    }
    let from_restricted = asker.peer(&restricted.ticket()).peers().await.unwrap();
    assert_eq!(from_restricted, Vec::<Ticket>::new());
    let from_open = asker.peer(&open.ticket()).peers().await.unwrap();
    assert_eq!(from_open, vec![known.ticket()]);
    for n in [known, asker, restricted, open] {
        n.shutdown().await.unwrap();
    }
}

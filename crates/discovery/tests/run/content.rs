//! Reconcile by content: bytes stored here under another codec are never fetched again.

use crate::common::*;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::{DiscoveryConfig, Scope};
use seedbank_sim::{Behavior, SimTree};

/// `blob`'s bytes under the RAW codec.
fn as_raw(blob: &Blob) -> Blob {
    Blob::new(codec::RAW, blob.data().clone())
}

#[tokio::test(start_paused = true)]
async fn a_named_scope_of_trusted_peers_never_fetches_bytes_stored_here_under_another_codec() {
    let mut net = Net::new();
    let tree = SimTree::generate(&mut rng(5), "t", &[4, 3]);
    let blocks = tree.blocks.clone();
    let peer = net
        .peer("p", Behavior::Honest, ms(10), blocks.clone(), Some("doc"))
        .await;
    let client = net.node().await;
    // Same bytes as blocks 1 and 2, stored as RAW: block 1 outside the scope, block 2 in it.
    client.put(vec![as_raw(&blocks[1])], None).await.unwrap();
    client
        .put(vec![as_raw(&blocks[2])], Some("doc"))
        .await
        .unwrap();
    // Membership taken from a peer's word (trusted peers): without it every member is
    // fetched from the peer (see tests/named_scopes.rs).
    let discovery = client.discovery(DiscoveryConfig {
        trust_named_members: true,
        ..config()
    });
    let report = discovery
        .discover(
            &Scope::named("doc"),
            &dyn_peers(std::slice::from_ref(&peer)),
        )
        .await
        .unwrap();

    assert!(report.complete, "{report}");
    let sent = peer.sent();
    assert!(!sent.contains(blocks[1].cid()) && !sent.contains(blocks[2].cid()));
    assert_eq!(sent.len(), blocks.len() - 2);
    assert_eq!(report.blobs_fetched, blocks.len() as u64 - 2);
    assert_eq!(
        report.adopted, 1,
        "block 1 got its row from the local bytes"
    );
    assert!(client.store().has(blocks[1].cid()).await.unwrap());
    let members = client.index.scope_members("doc").await.unwrap();
    assert!(members.contains(blocks[1].cid()));
    assert_eq!(members.len(), blocks.len(), "block 2 is there as RAW");
}

#[tokio::test(start_paused = true)]
async fn a_dag_discovery_takes_blocks_it_holds_under_another_codec_from_local_bytes() {
    let mut net = Net::new();
    let tree = SimTree::generate(&mut rng(6), "t", &[4, 3]);
    let peer = net
        .peer("p", Behavior::Honest, ms(10), tree.blocks.clone(), None)
        .await;
    let client = net.node().await;
    // The root's bytes and an inner block's, stored as RAW.
    let (root, inner) = (&tree.blocks[0], &tree.blocks[1]);
    client
        .put(vec![as_raw(root), as_raw(inner)], None)
        .await
        .unwrap();
    let discovery = client.discovery(config());
    let report = discovery
        .discover(
            &Scope::dag(tree.root_cid()),
            &dyn_peers(std::slice::from_ref(&peer)),
        )
        .await
        .unwrap();

    assert!(report.complete, "{report}");
    assert_complete(&client, &tree.root_cid()).await;
    let sent = peer.sent();
    assert!(
        !sent.contains(root.cid()) && !sent.contains(inner.cid()),
        "{report}"
    );
    assert_eq!(report.adopted, 2);
    assert_eq!(report.blobs_fetched, tree.len() as u64 - 2);
}

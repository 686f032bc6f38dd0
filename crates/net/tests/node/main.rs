//! Nodes over iroh on 127.0.0.1: serving and syncing, per-remote limits, peer exchange
//! under the serve policy, shutdown with requests in flight.

mod net;
mod peer_exchange;
mod remote_limits;

use seedbank_sim::{SimDag, SimNode};

/// A store, index and responder of its own for node `name`, in `dir`.
async fn open(dir: &tempfile::TempDir, name: &str) -> SimNode {
    SimNode::open(&dir.path().join(format!("{name}.db")))
        .await
        .unwrap()
}

/// Every block of `dag` is stored at `node` with its original bytes, and the store verifies.
async fn assert_holds(node: &SimNode, dag: &SimDag) {
    let missing = node.index.missing(&dag.root_cid()).await.unwrap();
    assert!(missing.is_empty(), "{} blocks still missing", missing.len());
    for blob in dag.blocks() {
        let stored = node.store().get(blob.cid()).await.unwrap().expect("stored");
        assert_eq!(&stored[..], &blob.data()[..], "{}", blob.cid());
    }
    let verify = node.store().verify().await.unwrap();
    assert!(verify.problems.is_empty(), "{:?}", verify.problems);
}

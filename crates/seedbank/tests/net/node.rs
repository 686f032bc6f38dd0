//! `Node` end to end: a DAG put through the door walks as a DAG, and one node syncs it from
//! another over QUIC on 127.0.0.1 (peer exchange included), then both close.

use std::collections::BTreeMap;

use ipld_core::ipld::Ipld;
use seedbank::blobstore::{codec, Blob};
use seedbank::discovery::Scope;
use seedbank::index::IndexPutOptions;
use seedbank::{Node, NodeOptions, ServeConfig, SyncConfig};

fn dag() -> (seedbank::Cid, Vec<Blob>) {
    let leaves: Vec<Blob> = (0..50)
        .map(|i| Blob::new(codec::RAW, format!("leaf {i}").into_bytes()))
        .collect();
    let links = leaves.iter().map(|b| Ipld::Link(*b.cid())).collect();
    let root = Ipld::Map(BTreeMap::from([("l".to_string(), Ipld::List(links))]));
    let root = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&root).unwrap());
    let cid = *root.cid();
    let mut all = vec![root];
    all.extend(leaves);
    (cid, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_syncs_a_dag_from_another_over_quic() {
    let dir = tempfile::tempdir().unwrap();
    let (root, blobs) = dag();
    let a = Node::open(dir.path().join("a.db"), NodeOptions::default())
        .await
        .unwrap();
    a.put_many(blobs, IndexPutOptions::default()).await.unwrap();
    // Links were indexed by the door: the DAG walks whole.
    assert_eq!(a.index().reachable(&root).await.unwrap().len(), 51);
    let db_a = dir.path().join("a.db");
    let server = a
        .serve(ServeConfig {
            key_file: Some(Node::key_file(&db_a)),
            ticket_file: Some(dir.path().join("a.ticket")),
            ..ServeConfig::default()
        })
        .await
        .unwrap();
    let ticket = server.ticket();
    let written = std::fs::read_to_string(dir.path().join("a.ticket")).unwrap();
    assert_eq!(written, ticket.to_string());
    assert!(Node::key_file(&db_a).exists());

    let b = Node::open(dir.path().join("b.db"), NodeOptions::default())
        .await
        .unwrap();
    b.pin("doc", &root).await.unwrap();
    let report = b
        .sync(&Scope::dag(root), &[ticket], &SyncConfig::default())
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(report.blobs_fetched, 51);
    assert!(b.index().missing(&root).await.unwrap().is_empty());
    server.shutdown().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn errors_keep_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path().join("c.db"), NodeOptions::default())
        .await
        .unwrap();
    node.close().await.unwrap();
    let err = node
        .put(Blob::new(codec::RAW, &b"late"[..]))
        .await
        .unwrap_err();
    // The layers' own errors, typed all the way down (not a message).
    assert!(
        matches!(
            err,
            seedbank::Error::Index(seedbank::index::Error::Blobstore(
                seedbank::blobstore::Error::Closed
            ))
        ),
        "{err:?}"
    );
}

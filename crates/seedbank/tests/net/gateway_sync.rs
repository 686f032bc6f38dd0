//! `Node::sync` mixing a QUIC peer and a trustless HTTP gateway in one run: each brings
//! the part of the DAG only it holds (the gateway a UnixFS file, by one CAR stream), on
//! 127.0.0.1.

use seedbank::blobstore::Blob;
use seedbank::discovery::Scope;
use seedbank::files::testing::noise;
use seedbank::files::{AddOptions, Files, Profile};
use seedbank::index::testing::{cids, leaves, node};
use seedbank::index::IndexPutOptions;
use seedbank::{Node, NodeOptions, ServeConfig, SyncConfig};
use seedbank_gateway::{Gateway, GatewayConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_takes_each_part_of_a_dag_from_the_quic_peer_or_the_gateway_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    // The gateway's node holds a UnixFS file F (2 MiB: a root and 8 raw leaves).
    let g = Node::open(dir.path().join("g.db"), NodeOptions::default())
        .await
        .unwrap();
    let file = Files::new(g.index().clone())
        .add_reader(
            &noise(2 << 20, 0x9e37_79b9_7f4a_7c15)[..],
            &AddOptions::new(Profile::KuboCidV1),
        )
        .await
        .unwrap();
    assert_eq!(file.blocks, 9);
    let mut config = GatewayConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let gateway = Gateway::new(g.index().clone(), config);
    let listener = gateway.bind().await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));

    // The QUIC peer holds the root R -> [X, F] and X's subtree (30 leaves), not F.
    let a = Node::open(dir.path().join("a.db"), NodeOptions::default())
        .await
        .unwrap();
    let x_leaves = leaves("x", 30);
    let x = node("x", &cids(&x_leaves));
    let r = node("r", &[*x.cid(), file.root]);
    let root = *r.cid();
    let mut blobs: Vec<Blob> = x_leaves;
    blobs.push(x);
    blobs.push(r);
    a.put_many(blobs, IndexPutOptions::default()).await.unwrap();
    let server = a.serve(ServeConfig::default()).await.unwrap();

    let b = Node::open(dir.path().join("b.db"), NodeOptions::default())
        .await
        .unwrap();
    let config = SyncConfig {
        gateways: vec![url.parse().unwrap()],
        ..SyncConfig::default()
    };
    let report = b
        .sync(&Scope::dag(root), &[server.ticket()], &config)
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(report.blobs_fetched, 2 + 30 + 9);
    assert!(b.index().missing(&root).await.unwrap().is_empty());
    let from = |prefix: &str| {
        report
            .sessions
            .iter()
            .filter(|s| s.peer.starts_with(prefix))
            .map(|s| s.blobs)
            .sum::<u64>()
    };
    assert_eq!(from("http://"), 9, "the file, from the gateway: {report}");
    assert_eq!(report.blobs_fetched - from("http://"), 32, "{report}");
    assert_eq!(report.liars + report.peers_failed, 0, "{report}");
    // The file reads back.
    let mut reader = Files::new(b.index().clone())
        .cat(&file.root, 0, None)
        .await
        .unwrap();
    let mut n = 0;
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        n += chunk.len();
    }
    assert_eq!(n, 2 << 20);

    server.shutdown().await.unwrap();
    let _ = stop.send(());
    http.await.unwrap().unwrap();
    for n in [a, b, g] {
        n.close().await.unwrap();
    }
}

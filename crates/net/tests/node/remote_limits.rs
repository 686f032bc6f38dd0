//! One remote cannot take the node: a remote that opens many streams and never reads its
//! answers holds its own limits (connections, requests, answer bytes), not the node's, while
//! another remote syncs. Real iroh endpoints on 127.0.0.1; every wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use crate::{assert_holds, open};
use iroh::endpoint::{Connection, RecvStream, VarInt};
use rand::rngs::StdRng;
use rand::SeedableRng;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::{DiscoveryConfig, Peer, ResponderConfig, Scope};
use seedbank_net::frame;
use seedbank_net::protocol::{Kind, Request};
use seedbank_net::testing::loopback_endpoint;
use seedbank_net::{Node, NodeConfig, PeerConfig, ALPN};
use seedbank_sim::SimDag;

/// Bytes of each large blob: 8 of them (1.6 MB) are more than a QUIC stream window
/// (1.25 MB), so a fetch answer for them stays stuck at a server whose client never reads.
const BIG: usize = 200 * 1024;
/// Send budget of one remote: room for two such answers, not three.
const PER_REMOTE_SEND: usize = 4 << 20;

fn config() -> NodeConfig {
    NodeConfig {
        idle_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(2),
        request_timeout: Duration::from_secs(20),
        max_connections_per_remote: 4,
        max_send_bytes_per_remote: PER_REMOTE_SEND,
        max_send_bytes: 4 * PER_REMOTE_SEND,
        peer: PeerConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(1),
        },
        ..NodeConfig::default()
    }
}

/// The kind of the answer on `recv`, reading its header only.
async fn answer_kind(recv: &mut RecvStream) -> Kind {
    let header = frame::read_header(recv, |k| !k.is_request());
    let (kind, _) = tokio::time::timeout(Duration::from_secs(30), header)
        .await
        .expect("every request gets an answer header")
        .unwrap();
    assert!(matches!(kind, Kind::Blobs | Kind::Busy), "{kind:?}");
    kind
}

/// Opens a stream, sends one whole request, and returns the stream to read from.
async fn send_request(conn: &Connection, request: &Request) -> RecvStream {
    let (kind, body) = request.encode();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    frame::write(&mut send, kind, &body).await.unwrap();
    send.finish().unwrap();
    recv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_never_reads_holds_its_own_limits_while_another_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let server = open(&dir, "server").await;
    let big: Vec<Blob> = (0..8u8)
        .map(|i| Blob::new(codec::RAW, vec![i; BIG]))
        .collect();
    let dag = SimDag::generate(&mut StdRng::seed_from_u64(9), "net", 6, 20, 300, None);
    server.put(big.clone(), None).await.unwrap();
    server.put(dag.blocks(), None).await.unwrap();
    let served = Node::spawn(
        Arc::new(server.responder("server", ResponderConfig::default())),
        config(),
    )
    .await
    .unwrap();

    // The slow remote: one endpoint id, four connections (its limit).
    let slow = loopback_endpoint().await;
    let mut conns = Vec::new();
    for _ in 0..4 {
        let conn = slow.connect(served.ticket().addr().clone(), ALPN).await;
        conns.push(conn.unwrap());
    }

    // Sixteen streams on each, every one a fetch of 1.6 MB whose answer it never reads
    // beyond the frame header: eight at once, then eight one after the other (each sent
    // once the previous one's answer header arrived, so none is refused for arriving with
    // the others).
    let fetch = Request::Fetch(big.iter().map(|b| *b.cid()).collect());
    let mut streams = Vec::new();
    for conn in &conns {
        for _ in 0..8 {
            streams.push(send_request(conn, &fetch).await);
        }
    }
    let mut kinds = Vec::new();
    for conn in &conns {
        for _ in 0..8 {
            let mut recv = send_request(conn, &fetch).await;
            kinds.push(answer_kind(&mut recv).await);
            streams.push(recv);
        }
    }
    for recv in &mut streams[..32] {
        kinds.push(answer_kind(recv).await);
    }
    let blobs = kinds.iter().filter(|k| **k == Kind::Blobs).count();
    let busy = kinds.iter().filter(|k| **k == Kind::Busy).count() as u64;
    // At most two answers fit its send budget; everything else was refused.
    assert!(blobs <= PER_REMOTE_SEND / (8 * BIG), "{blobs} answers held");
    assert_eq!(blobs + busy as usize, 64);
    let stats = served.stats();
    assert_eq!(
        (stats.busy, stats.remote_limited),
        (busy, busy),
        "{stats:?}"
    );
    assert!(stats.send_bytes_peak <= PER_REMOTE_SEND as u64, "{stats:?}");

    // Meanwhile another endpoint id syncs a DAG from the same node, to completion.
    let honest = open(&dir, "honest").await;
    let honest_node = Node::spawn(
        Arc::new(honest.responder("honest", ResponderConfig::default())),
        config(),
    )
    .await
    .unwrap();
    let peers: Vec<Arc<dyn Peer>> = vec![Arc::new(honest_node.peer(&served.ticket()))];
    let discovery = honest.discovery(DiscoveryConfig {
        round_timeout: Duration::from_secs(5),
        peer_timeout: Duration::from_secs(10),
        ..DiscoveryConfig::default()
    });
    let report = discovery
        .discover(&Scope::dag(dag.root_cid()), &peers)
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!((report.busy, report.peers_failed), (0, 0), "{report}");
    assert_holds(&honest, &dag).await;

    // The slow remote still has its answers stuck: the node stayed available all along.
    assert!(streams.len() == 64 && conns.iter().all(|c| c.close_reason().is_none()));
    // A fifth connection from it is one too many: closed at once.
    let fifth = slow
        .connect(served.ticket().addr().clone(), ALPN)
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), fifth.closed())
        .await
        .expect("a connection past max_connections_per_remote is closed");
    assert!(reason.to_string().contains("503"), "{reason}");
    assert!(conns.iter().all(|c| c.close_reason().is_none()));
    for conn in &conns {
        conn.close(VarInt::from_u32(0), b"bye");
    }
    drop(streams);
    slow.close().await;
    honest_node.shutdown().await.unwrap();
    served.shutdown().await.unwrap();
}

/// Limits a node cannot run with are refused when it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_out_of_range_are_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = open(&dir, "server").await;
    let bad = [
        NodeConfig {
            max_inbound_per_remote: 0,
            ..config()
        },
        NodeConfig {
            max_send_bytes: 0,
            ..config()
        },
        NodeConfig {
            max_connections: 0,
            ..config()
        },
    ];
    for config in bad {
        let local = Arc::new(server.responder("server", ResponderConfig::default()));
        let spawned = Node::spawn(local, config).await;
        assert!(
            matches!(spawned, Err(seedbank_net::Error::Config(_))),
            "{spawned:?}"
        );
    }
    assert!(config().validate().is_ok());
}

//! Network tests: real iroh endpoints on 127.0.0.1, real time. Each test stops by itself.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::{assert_holds, open};
use cid::Cid;
use iroh::endpoint::{Connection, VarInt};
use iroh::{EndpointAddr, EndpointId, SecretKey};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::{DiscoveryConfig, Error, Message, Peer, ResponderConfig, Scope};
use seedbank_net::frame::{self, VERSION};
use seedbank_net::protocol::{Kind, Request, Response};
use seedbank_net::testing::loopback_endpoint;
use seedbank_net::{Node, NodeConfig, PeerConfig, ServePolicy, Ticket, ALPN};
use seedbank_sim::{Behavior, SimDag, SimNode, SimPeer};
use tokio::sync::Semaphore;

fn config() -> NodeConfig {
    NodeConfig {
        idle_timeout: Duration::from_secs(3),
        shutdown_grace: Duration::from_secs(2),
        peer: PeerConfig {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(3),
            retry_after: Duration::from_secs(1),
        },
        ..NodeConfig::default()
    }
}

fn discovery_config() -> DiscoveryConfig {
    DiscoveryConfig {
        round_timeout: Duration::from_secs(2),
        peer_timeout: Duration::from_secs(5),
        ..DiscoveryConfig::default()
    }
}

async fn serve(node: &SimNode, name: &str) -> Node {
    let responder = node.responder(name, ResponderConfig::default());
    Node::spawn(Arc::new(responder), config()).await.unwrap()
}

/// A node holding `blobs`, served through a simulated peer that behaves as `behavior`
/// (lies, hangs or answers honestly) on the real network.
async fn serve_as(
    dir: &tempfile::TempDir,
    name: &str,
    behavior: Behavior,
    blobs: Vec<Blob>,
) -> Node {
    let node = open(dir, name).await;
    node.put(blobs, None).await.unwrap();
    let local = SimPeer::new(
        name,
        behavior,
        Duration::ZERO,
        Some(node.responder(name, ResponderConfig::default())),
    );
    Node::spawn(Arc::new(local), config()).await.unwrap()
}

fn dag(seed: u64, branches: usize, leaves: usize) -> SimDag {
    let mut rng = StdRng::seed_from_u64(seed);
    SimDag::generate(&mut rng, "net", branches, leaves, 300, None)
}

/// A ticket nobody answers: a fresh id on a UDP port just released.
fn dead_ticket() -> Ticket {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    Ticket::new(EndpointAddr::new(SecretKey::generate().public()).with_ip_addr(addr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_split_across_three_nodes_syncs_completely() {
    let dir = tempfile::tempdir().unwrap();
    let dag = dag(1, 12, 25);
    let mut rng = StdRng::seed_from_u64(7);
    let mut parts: Vec<Vec<Blob>> = vec![Vec::new(); 3];
    for blob in dag.blocks() {
        // The root is on node 0 only; every other block on one node at random.
        let at = if blob.cid() == &dag.root_cid() {
            0
        } else {
            rng.gen_range(0..3)
        };
        parts[at].push(blob);
    }
    let mut nodes = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let node = open(&dir, &format!("s{i}")).await;
        node.put(part, None).await.unwrap();
        let served = serve(&node, &format!("s{i}")).await;
        nodes.push((node, served));
    }
    let client = open(&dir, "client").await;
    let client_node = serve(&client, "client").await;
    let peers: Vec<Arc<dyn Peer>> = nodes
        .iter()
        .map(|(_, n)| Arc::new(client_node.peer(&n.ticket())) as Arc<dyn Peer>)
        .collect();
    let discovery = client.discovery(discovery_config());
    let report = discovery
        .discover(&Scope::dag(dag.root_cid()), &peers)
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(report.duplicates, 0);
    assert!(report.peers_contacted <= discovery_config().fanout as u64);
    assert_eq!(report.blobs_fetched as usize, dag.len());
    assert_holds(&client, &dag).await;
    client_node.shutdown().await.unwrap();
    for (_, n) in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_replica_syncs_over_quic_and_reports_its_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let dag = dag(2, 8, 20);
    let server = open(&dir, "server").await;
    server.put(dag.blocks(), None).await.unwrap();
    let served = serve(&server, "server").await;
    let client = open(&dir, "client").await;
    let client_node = serve(&client, "client").await;
    let peer = Arc::new(client_node.peer(&served.ticket()));
    assert_eq!(peer.id(), served.id().to_string());
    let peers: Vec<Arc<dyn Peer>> = vec![peer.clone()];
    let report = client
        .discovery(discovery_config())
        .discover(&Scope::dag(dag.root_cid()), &peers)
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!((report.duplicates, report.peers_contacted), (0, 1));
    assert_holds(&client, &dag).await;
    let stats = peer.stats().await;
    assert_eq!(stats.connects, 1, "one connection, reused for every call");
    assert!(stats.requests >= 2);
    assert!(stats.udp_bytes_received >= stats.frame_bytes_received);
    client_node.shutdown().await.unwrap();
    served.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lying_and_stalling_peers_do_not_stop_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let dag = dag(3, 6, 20);
    let mut served = Vec::new();
    for (name, behavior) in [
        ("liar", Behavior::Liar),
        ("stall", Behavior::Hanging),
        ("honest", Behavior::Honest),
    ] {
        served.push(serve_as(&dir, name, behavior, dag.blocks()).await);
    }
    let client = open(&dir, "client").await;
    let client_node = serve(&client, "client").await;
    let mut peers: Vec<Arc<dyn Peer>> = vec![Arc::new(client_node.peer(&dead_ticket()))];
    peers.extend(
        served
            .iter()
            .map(|n| Arc::new(client_node.peer(&n.ticket())) as Arc<dyn Peer>),
    );
    let discovery = client.discovery(DiscoveryConfig {
        concurrency: 4,
        ..discovery_config()
    });
    let report = discovery
        .discover(&Scope::dag(dag.root_cid()), &peers)
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    // Whatever the liar sent was rejected: only the original bytes are stored.
    assert_holds(&client, &dag).await;
    // A liar that was sent a fetch was caught and dropped.
    let liar_id = served[0].id().to_string();
    let liar = report.sessions.iter().find(|s| s.peer == liar_id);
    if liar.is_some_and(|s| s.fetches > 0) {
        assert!(report.liars >= 1, "{report}");
    }
    client_node.shutdown().await.unwrap();
    for n in served {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_is_scored_down_and_not_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let dag = dag(4, 4, 10);
    let mut served = Vec::new();
    for (name, behavior) in [("liar", Behavior::Liar), ("honest", Behavior::Honest)] {
        served.push(serve_as(&dir, name, behavior, dag.blocks()).await);
    }
    let client = open(&dir, "client").await;
    let client_node = serve(&client, "client").await;
    let liar: Arc<dyn Peer> = Arc::new(client_node.peer(&served[0].ticket()));
    let honest: Arc<dyn Peer> = Arc::new(client_node.peer(&served[1].ticket()));
    let discovery = client.discovery(discovery_config());
    let scope = Scope::dag(dag.root_cid());
    // The liar alone: it is fetched from, caught, and nothing it sent is stored.
    let first = discovery
        .discover(&scope, std::slice::from_ref(&liar))
        .await;
    let stored = client
        .store()
        .has_many(&dag.blocks().iter().map(|b| *b.cid()).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(
        stored.iter().all(|has| !has),
        "a liar's bytes were stored: {first:?}"
    );
    let score = discovery
        .peer_score(liar.id())
        .expect("the liar was contacted");
    assert!(score.liar, "{score:?}");
    // Then the liar first in the list and an honest node second (not asked before, so the
    // negative cache does not answer): the liar is ranked out, the honest node completes.
    let report = discovery
        .discover(&scope, &[liar.clone(), honest.clone()])
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert!(
        report.sessions.iter().all(|s| s.peer != liar.id()),
        "the liar was asked again: {report}"
    );
    assert_holds(&client, &dag).await;
    client_node.shutdown().await.unwrap();
    for n in served {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_responder_builds_its_haves_once_however_many_peers_ask() {
    let dir = tempfile::tempdir().unwrap();
    let dag = dag(5, 6, 20);
    let server = open(&dir, "server").await;
    server.put(dag.blocks(), Some("doc")).await.unwrap();
    let served = serve(&server, "server").await;
    // Six clients at once: three sync the named scope, three the DAG.
    let mut clients = Vec::new();
    for c in 0..6 {
        let client = open(&dir, &format!("c{c}")).await;
        let node = serve(&client, &format!("c{c}")).await;
        clients.push((client, node));
    }
    let mut runs = tokio::task::JoinSet::new();
    for (c, (client, node)) in clients.iter().enumerate() {
        let peers: Vec<Arc<dyn Peer>> = vec![Arc::new(node.peer(&served.ticket()))];
        let discovery = client.discovery(discovery_config());
        let scope = if c % 2 == 0 {
            Scope::named("doc")
        } else {
            Scope::dag(dag.root_cid())
        };
        runs.spawn(async move { discovery.discover(&scope, &peers).await });
    }
    while let Some(done) = runs.join_next().await {
        let report = done.unwrap().unwrap();
        assert!(report.complete, "{report}");
        assert_eq!(report.peers_contacted, 1);
    }
    for (client, _) in &clients {
        assert_holds(client, &dag).await;
    }
    // Nothing changed on the server, so it built one snapshot per scope asked for (the
    // named scope and the DAG): 2 builds for 6 sessions; every other lookup was a hit.
    let stats = server.haves.stats();
    assert_eq!(stats.builds, 2, "{stats:?}");
    assert!(stats.hits >= 4, "{stats:?}");
    for (_, node) in clients {
        node.shutdown().await.unwrap();
    }
    served.shutdown().await.unwrap();
}

/// Sends raw bytes on a fresh stream and returns the response frame, or `None` when the
/// server reset or stopped the stream.
async fn raw_exchange(conn: &Connection, bytes: &[u8]) -> Option<Response> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        // The server may stop reading before all of it arrived: ignore write errors.
        let _ = send.write_all(bytes).await;
        let _ = send.finish();
        let (kind, body) = frame::read(&mut recv, |k| !k.is_request()).await.ok()?;
        Some(Response::decode(kind, &body).expect("server answers are well-formed"))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("the server answers or closes every stream")
}

fn header(version: u8, kind: u8, len: u32) -> Vec<u8> {
    let mut h = vec![version, kind];
    h.extend_from_slice(&len.to_be_bytes());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_wire_is_refused_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let dag = dag(4, 4, 10);
    let server = open(&dir, "server").await;
    server.put(dag.blocks(), Some("doc")).await.unwrap();
    let served = Node::spawn(
        Arc::new(server.responder("server", ResponderConfig::default())),
        NodeConfig {
            max_scopes_per_connection: 100,
            ..config()
        },
    )
    .await
    .unwrap();
    let client = loopback_endpoint().await;
    let conn = client
        .connect(served.ticket().addr().clone(), ALPN)
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(5);

    // Random frames: closed streams or `Failed` answers, never a crash.
    for _ in 0..50 {
        let mut junk = vec![0u8; rng.gen_range(1..200)];
        rng.fill_bytes(&mut junk);
        if let Some(r) = raw_exchange(&conn, &junk).await {
            assert!(matches!(r, Response::Failed(..)), "{r:?}");
        }
    }
    // Valid headers with random bodies: always a `Failed` answer or a closed stream.
    for kind in [Kind::Reconcile, Kind::Fetch] {
        for _ in 0..20 {
            let mut body = vec![0u8; rng.gen_range(0..300)];
            rng.fill_bytes(&mut body);
            let mut bytes = header(VERSION, kind as u8, body.len() as u32);
            bytes.extend_from_slice(&body);
            if let Some(r) = raw_exchange(&conn, &bytes).await {
                assert!(matches!(r, Response::Failed(..)), "{r:?}");
            }
        }
    }
    // Oversized length prefixes, another version, a response kind as a request: the stream
    // is reset before any body is read.
    for bytes in [
        header(VERSION, Kind::Reconcile as u8, u32::MAX),
        header(VERSION, Kind::Fetch as u8, 1 << 20),
        header(VERSION, Kind::Peers as u8, 1),
        header(VERSION + 1, Kind::Peers as u8, 0),
        header(VERSION, Kind::Blobs as u8, 0),
    ] {
        assert_eq!(raw_exchange(&conn, &bytes).await, None);
    }
    // An oversized prefix is refused on the header alone: the stream is reset at once,
    // though the body never comes and the stream stays open.
    {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&header(VERSION, Kind::Reconcile as u8, 100 << 20))
            .await
            .unwrap();
        let read = tokio::time::timeout(
            Duration::from_secs(2),
            frame::read(&mut recv, |k| !k.is_request()),
        )
        .await
        .expect("refused before any body arrives");
        assert!(read.is_err());
    }
    // A forged count: a million CIDs announced in a few bytes.
    let mut forged = header(VERSION, Kind::Fetch as u8, 5);
    forged.extend_from_slice(&[0xc0, 0x84, 0x3d, 0, 0]);
    assert!(matches!(
        raw_exchange(&conn, &forged).await,
        Some(Response::Failed(..))
    ));
    // Many distinct scope names: past the per-connection cap they are refused unanswered.
    let mut refused = 0;
    for i in 0..300 {
        let (kind, body) =
            Request::Reconcile(Scope::named(format!("junk:{i}")), Message::default()).encode();
        let mut bytes = header(VERSION, kind as u8, body.len() as u32);
        bytes.extend_from_slice(&body);
        match raw_exchange(&conn, &bytes).await {
            Some(Response::Failed(..)) => refused += 1,
            Some(Response::Reconciled(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(refused >= 200, "{refused} of 300 refused");
    assert!(served.stats().bad_requests > 0);
    conn.close(VarInt::from_u32(0), b"bye");

    // The node still serves a real sync.
    let fresh = open(&dir, "fresh").await;
    let fresh_node = serve(&fresh, "fresh").await;
    let peers: Vec<Arc<dyn Peer>> = vec![Arc::new(fresh_node.peer(&served.ticket()))];
    let report = fresh
        .discovery(discovery_config())
        .discover(&Scope::dag(dag.root_cid()), &peers)
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_holds(&fresh, &dag).await;
    client.close().await;
    fresh_node.shutdown().await.unwrap();
    served.shutdown().await.unwrap();
}

/// A policy that holds every reconcile until released, and denies scope `secret` and
/// blobs in `hidden` to everyone but `insider`.
struct Gate {
    held: Semaphore,
    open: Semaphore,
    insider: Option<EndpointId>,
    hidden: HashSet<Cid>,
}

impl Gate {
    fn new(insider: Option<EndpointId>, hidden: HashSet<Cid>) -> Arc<Gate> {
        Arc::new(Gate {
            held: Semaphore::new(0),
            open: Semaphore::new(0),
            insider,
            hidden,
        })
    }
}

/// Serves `server` under `gate`.
async fn serve_gated(server: &SimNode, gate: Arc<Gate>, config: NodeConfig) -> Node {
    Node::spawn_with_policy(
        Arc::new(server.responder("server", ResponderConfig::default())),
        gate,
        config,
    )
    .await
    .unwrap()
}

#[async_trait::async_trait]
impl ServePolicy for Gate {
    async fn may_read_scope(&self, remote: &EndpointId, scope: &Scope) -> bool {
        if scope == &Scope::named("slow") {
            self.held.add_permits(1);
            let _ = self.open.acquire().await.unwrap();
        }
        scope != &Scope::named("secret") || Some(*remote) == self.insider
    }

    async fn may_read_blob(&self, remote: &EndpointId, cid: &Cid) -> bool {
        !self.hidden.contains(cid) || Some(*remote) == self.insider
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_inbound_cap_requests_are_answered_busy() {
    let dir = tempfile::tempdir().unwrap();
    let server = open(&dir, "server").await;
    let gate = Gate::new(None, HashSet::new());
    let config = NodeConfig {
        max_inbound: 2,
        ..config()
    };
    let served = serve_gated(&server, gate.clone(), config).await;
    let client = serve(&open(&dir, "client").await, "client").await;
    let peer = Arc::new(client.peer(&served.ticket()));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let peer = peer.clone();
        calls.spawn(async move {
            peer.reconcile(&Scope::named("slow"), Message::default())
                .await
        });
    }
    // Two requests hold the two slots; the other six are refused at once.
    let mut busy = 0;
    while busy < 6 {
        match calls.join_next().await.unwrap().unwrap() {
            Err(Error::Busy) => busy += 1,
            other => panic!("expected Busy, got {other:?}"),
        }
    }
    let _ = gate.held.acquire_many(2).await.unwrap();
    assert_eq!(served.stats().busy, 6);
    gate.open.add_permits(2);
    while let Some(done) = calls.join_next().await {
        done.unwrap().expect("the admitted requests complete");
    }
    client.shutdown().await.unwrap();
    served.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_policy_and_the_allowlist_keep_content_private() {
    let dir = tempfile::tempdir().unwrap();
    let dag = dag(6, 3, 10);
    let server = open(&dir, "server").await;
    server.put(dag.blocks(), Some("secret")).await.unwrap();
    let public = Blob::new(codec::RAW, &b"public"[..]);
    server
        .put(vec![public.clone()], Some("public"))
        .await
        .unwrap();

    let insider_key = SecretKey::generate();
    let hidden = dag.blocks().iter().map(|b| *b.cid()).collect();
    let gate = Gate::new(Some(insider_key.public()), hidden);
    let served = serve_gated(&server, gate, config()).await;

    // An outsider gets nothing of the secret scope, by reconciliation or by CID.
    let outsider = open(&dir, "outsider").await;
    let outsider_node = serve(&outsider, "outsider").await;
    let peer = Arc::new(outsider_node.peer(&served.ticket()));
    let peers: Vec<Arc<dyn Peer>> = vec![peer.clone()];
    let discovery = outsider.discovery(discovery_config());
    let secret = discovery.discover(&Scope::named("secret"), &peers).await;
    assert!(!secret.is_ok_and(|r| r.complete));
    assert!(outsider
        .index
        .scope_members("secret")
        .await
        .unwrap()
        .is_empty());
    let by_cid = peer.fetch(&[dag.root_cid()]).await.unwrap();
    assert!(by_cid.is_empty());
    let err = peer
        .reconcile(&Scope::named("secret"), Message::default())
        .await;
    assert!(matches!(err, Err(Error::Transport { .. })), "{err:?}");
    // ... while the public scope syncs.
    let report = discovery
        .discover(&Scope::named("public"), &peers)
        .await
        .unwrap();
    assert!(report.complete && report.blobs_fetched == 1, "{report}");
    assert!(served.stats().denied >= 2);

    // The insider (authenticated by its key) reads the secret scope.
    let insider = open(&dir, "insider").await;
    let insider_node = Node::spawn(
        Arc::new(insider.responder("insider", ResponderConfig::default())),
        NodeConfig {
            secret_key: Some(insider_key.clone()),
            ..config()
        },
    )
    .await
    .unwrap();
    let peers: Vec<Arc<dyn Peer>> = vec![Arc::new(insider_node.peer(&served.ticket()))];
    let report = insider
        .discovery(discovery_config())
        .discover(&Scope::named("secret"), &peers)
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert_eq!(
        insider.index.scope_members("secret").await.unwrap().len(),
        dag.len()
    );

    // An allowlist admits the insider only.
    let gated = Node::spawn(
        Arc::new(server.responder("gated", ResponderConfig::default())),
        NodeConfig {
            allow: Some(HashSet::from([insider_key.public()])),
            ..config()
        },
    )
    .await
    .unwrap();
    let stranger = outsider_node.peer(&gated.ticket());
    let err = stranger.fetch(&[*public.cid()]).await;
    assert!(matches!(err, Err(Error::Transport { .. })), "{err:?}");
    let friend = insider_node.peer(&gated.ticket());
    assert_eq!(friend.fetch(&[*public.cid()]).await.unwrap().len(), 1);
    assert_eq!(gated.stats().refused, 1);

    for node in [served, outsider_node, insider_node, gated] {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_exchange_hands_out_known_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let a = serve(&open(&dir, "a").await, "a").await;
    let b = serve(&open(&dir, "b").await, "b").await;
    let c = serve(&open(&dir, "c").await, "c").await;
    a.add_known_peer(b.ticket());
    a.add_known_peer(c.ticket());
    a.add_known_peer(a.ticket());
    let from_c = c.peer(&a.ticket()).peers().await.unwrap();
    assert_eq!(from_c, vec![b.ticket()], "the asker is left out");
    let from_b = b.peer(&a.ticket()).peers().await.unwrap();
    assert_eq!(from_b, vec![c.ticket()]);
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_is_answered_and_new_ones_are_refused() {
    use seedbank_blobstore::testing::{bounded, wait_for_async};
    let dir = tempfile::tempdir().unwrap();
    let server = open(&dir, "server").await;
    let gate = Gate::new(None, HashSet::new());
    let served = serve_gated(&server, gate.clone(), config()).await;
    let client = serve(&open(&dir, "client").await, "client").await;
    let peer = Arc::new(client.peer(&served.ticket()));
    // Admitted, and held inside the serving policy: in flight when the shutdown starts.
    let held = {
        let peer = peer.clone();
        tokio::spawn(async move {
            peer.reconcile(&Scope::named("slow"), Message::default())
                .await
        })
    };
    let _ = bounded("the request to be admitted", gate.held.acquire())
        .await
        .unwrap();
    let shutdown = tokio::spawn(served.shutdown());
    // The shutdown has begun once a new request on the same connection is refused.
    wait_for_async("the shutdown to refuse new requests", || {
        let peer = peer.clone();
        async move {
            peer.reconcile(&Scope::named("other"), Message::default())
                .await
                .is_err()
        }
    })
    .await;
    assert!(!held.is_finished(), "the held request was answered early");
    gate.open.add_permits(1);
    bounded("the held request", held)
        .await
        .unwrap()
        .expect("a request in flight at shutdown is answered");
    bounded("the shutdown", shutdown).await.unwrap().unwrap();
    client.shutdown().await.unwrap();
}

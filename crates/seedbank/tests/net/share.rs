//! `Node::serve` with `ServeConfig::share` (`seedbank serve --share`): only what the named
//! pins reach and the named scopes hold is served, by CID and by scope; peer exchange goes
//! only to the allowlisted remotes. Real QUIC on 127.0.0.1.

use std::collections::{BTreeMap, HashSet};

use ipld_core::ipld::Ipld;
use seedbank::blobstore::{codec, Blob, Priority};
use seedbank::discovery::{Message, Peer, Scope};
use seedbank::index::IndexPutOptions;
use seedbank::net::{bind_endpoint, NetPeer, NodeConfig, SecretKey, Ticket};
use seedbank::{Node, NodeOptions, ServeConfig, SyncConfig};

/// A DAG-CBOR root over two raw leaves.
fn dag() -> Vec<Blob> {
    let leaves: Vec<Blob> = (0..2)
        .map(|i| Blob::new(codec::RAW, format!("shared leaf {i}").into_bytes()))
        .collect();
    let links = leaves.iter().map(|b| Ipld::Link(*b.cid())).collect();
    let root = Ipld::Map(BTreeMap::from([("l".to_string(), Ipld::List(links))]));
    let mut all = vec![Blob::new(
        codec::DAG_CBOR,
        serde_ipld_dagcbor::to_vec(&root).unwrap(),
    )];
    all.extend(leaves);
    all
}

/// A peer of `ticket` dialling with identity `key`.
async fn dial(key: &SecretKey, ticket: &Ticket) -> NetPeer {
    let config = NodeConfig {
        secret_key: Some(key.clone()),
        ..NodeConfig::default()
    };
    let endpoint = bind_endpoint(&config).await.unwrap();
    NetPeer::new(endpoint, ticket.clone(), config.peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_serves_its_pins_and_scopes_only_and_peers_only_to_allowed_ids() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path().join("a.db"), NodeOptions::default())
        .await
        .unwrap();
    let blobs = dag();
    let (root, leaf) = (*blobs[0].cid(), *blobs[1].cid());
    node.put_many(blobs, IndexPutOptions::default())
        .await
        .unwrap();
    node.pin("public", &root).await.unwrap();
    let member = Blob::new(codec::RAW, &b"a member of docs"[..]);
    let member_cid = *member.cid();
    node.put_many(
        vec![member],
        IndexPutOptions::new(Priority::Normal, "test").scope("docs"),
    )
    .await
    .unwrap();
    let private = node
        .put(Blob::new(codec::RAW, &b"private"[..]))
        .await
        .unwrap();

    let other = Node::open(dir.path().join("b.db"), NodeOptions::default())
        .await
        .unwrap();
    let known = other.serve(ServeConfig::default()).await.unwrap();
    let (stranger, friend) = (SecretKey::generate(), SecretKey::generate());
    let shared = ServeConfig {
        share: vec!["public".into(), "docs".into()],
        known_peers: vec![known.ticket()],
        ..ServeConfig::default()
    };
    let server = node.serve(shared.clone()).await.unwrap();
    let peer = dial(&stranger, &server.ticket()).await;

    // By CID: the pinned DAG and the scope's member; the private blob reads as absent.
    let got: HashSet<_> = peer
        .fetch(&[root, leaf, member_cid, private])
        .await
        .unwrap()
        .into_iter()
        .map(|(cid, _)| cid)
        .collect();
    assert_eq!(got, HashSet::from([root, leaf, member_cid]));
    // By scope: the shared DAG (and a DAG inside it) and the named scope; nothing else.
    for scope in [Scope::dag(root), Scope::dag(leaf), Scope::named("docs")] {
        let answer = peer.reconcile(&scope, Message::default()).await;
        assert!(answer.is_ok(), "{scope}: {answer:?}");
    }
    for scope in [Scope::dag(private), Scope::named("secret")] {
        let answer = peer.reconcile(&scope, Message::default()).await;
        let err = answer.expect_err("denied").to_string();
        assert!(err.contains("denied"), "{scope}: {err}");
    }
    // Peer exchange under a share: nobody outside the allowlist learns of other nodes.
    assert_eq!(peer.peers().await.unwrap(), Vec::<Ticket>::new());
    // A blob pinned later is served at once (the pins changed).
    node.pin("later", &private).await.unwrap();
    assert!(peer.fetch(&[private]).await.unwrap().is_empty());
    let shared_later = ServeConfig {
        share: vec!["public".into(), "later".into()],
        ..shared.clone()
    };
    peer.close().await;
    server.shutdown().await.unwrap();

    // The allowlisted id gets the known peers; the policy still holds for it.
    let server = node
        .serve(ServeConfig {
            net: NodeConfig {
                allow: Some(HashSet::from([friend.public()])),
                ..NodeConfig::default()
            },
            ..shared_later
        })
        .await
        .unwrap();
    let peer = dial(&friend, &server.ticket()).await;
    assert_eq!(peer.peers().await.unwrap(), vec![known.ticket()]);
    assert_eq!(peer.fetch(&[private]).await.unwrap().len(), 1);
    assert!(peer.fetch(&[member_cid]).await.unwrap().is_empty());
    peer.close().await;
    server.shutdown().await.unwrap();

    // Without a share, everything and the known peers go to anyone.
    let server = node
        .serve(ServeConfig {
            known_peers: vec![known.ticket()],
            ..ServeConfig::default()
        })
        .await
        .unwrap();
    let peer = dial(&stranger, &server.ticket()).await;
    assert_eq!(peer.peers().await.unwrap(), vec![known.ticket()]);
    assert_eq!(peer.fetch(&[private, member_cid]).await.unwrap().len(), 2);
    peer.close().await;
    server.shutdown().await.unwrap();
    known.shutdown().await.unwrap();
    other.close().await.unwrap();
    node.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_dials_at_most_max_learned_dials_peers_it_learned() {
    let dir = tempfile::tempdir().unwrap();
    // A root whose one leaf nobody holds: a sync asks every peer it has for the leaf.
    let leaf = Blob::new(codec::RAW, &b"nobody has this"[..]);
    let root = Ipld::List(vec![Ipld::Link(*leaf.cid())]);
    let root = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&root).unwrap());
    let scope = Scope::dag(*root.cid());
    let served = Node::open(dir.path().join("a.db"), NodeOptions::default())
        .await
        .unwrap();
    served
        .put_many(vec![root], IndexPutOptions::default())
        .await
        .unwrap();
    // Eight tickets of nodes that are gone (fresh identities, closed ports).
    let mut dead = Vec::new();
    for _ in 0..8 {
        let gone = served.serve(ServeConfig::default()).await.unwrap();
        dead.push(gone.ticket());
        gone.shutdown().await.unwrap();
    }
    let server = served
        .serve(ServeConfig {
            known_peers: dead,
            ..ServeConfig::default()
        })
        .await
        .unwrap();
    for (i, (cap, most)) in [(2usize, 1 + 2), (16, 1 + 8)].into_iter().enumerate() {
        // A fresh client each time (no negative cache), contacting every peer it has.
        let mut options = NodeOptions::default();
        options.discovery.fanout = 64;
        let client = Node::open(dir.path().join(format!("c{i}.db")), options)
            .await
            .unwrap();
        let config = SyncConfig {
            max_learned_dials: cap,
            ..SyncConfig::default()
        };
        let report = client
            .sync(&scope, &[server.ticket()], &config)
            .await
            .unwrap();
        assert!(!report.complete);
        // The given peer and at most `cap` learned ones, whatever the given one knows.
        assert!(
            report.peers_contacted as usize <= most && report.peers_contacted >= 2,
            "cap {cap}: {report}"
        );
        client.close().await.unwrap();
    }
    server.shutdown().await.unwrap();
    served.close().await.unwrap();
}

//! The control socket at the library level: a request runs through `execute` on the node,
//! standard input streams through, frames over the cap and connections over the limit are
//! refused, and shutdown removes the socket.

use std::time::Duration;

use seedbank::blobstore::testing::wait_for_async;
use seedbank::control::{self, wire, ControlConfig, Input, Op, Reply};
use seedbank::{Node, NodeOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// Reads the one message the server sends on `stream`.
async fn answer(stream: &mut UnixStream) -> wire::ServerMsg {
    let (kind, body) = tokio::time::timeout(
        Duration::from_secs(10),
        wire::read_frame(stream, wire::MAX_REPLY),
    )
    .await
    .expect("an answer in time")
    .unwrap()
    .expect("a frame");
    wire::decode(kind, &body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_on_the_node_and_bad_or_extra_connections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("n.db");
    let node = Node::open(&db, NodeOptions::default()).await.unwrap();
    let socket = control::socket_path(&db);
    let config = ControlConfig {
        max_connections: 1,
        ..ControlConfig::default()
    };
    let server = node.control(&socket, config).unwrap();
    assert!(control::answers(&db).await);
    // The probe held the only slot until the server saw it close: wait until a request
    // gets through, so the steps below meet a free slot.
    let free = || async {
        let dry_run = Op::Gc { dry_run: true };
        control::request(&db, dry_run, None, None).await.is_ok()
    };
    wait_for_async("the probe's slot to be free", free).await;

    // `put -`: standard input streams through; the CID is the bytes' own.
    let bytes = vec![9u8; 200_000];
    let reply = control::request(
        &db,
        Op::Put {
            inputs: vec![Input::Stdin],
        },
        Some(Box::new(std::io::Cursor::new(bytes.clone()))),
        None,
    )
    .await
    .unwrap();
    let Reply::Put { cids } = reply else {
        panic!("{reply:?}")
    };
    let cid: seedbank::Cid = cids[0].parse().unwrap();
    assert_eq!(node.get(&cid).await.unwrap().unwrap().as_ref(), &bytes[..]);

    // A failing operation comes back as the command line would print it.
    let err = control::request(
        &db,
        Op::Pin {
            name: "x".into(),
            root: "nope".into(),
        },
        None,
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("invalid CID \"nope\""), "{err}");

    // A frame header over the cap is refused before its body is read.
    let mut big = UnixStream::connect(&socket).await.unwrap();
    let mut header = vec![wire::K_JSON];
    header.extend_from_slice(&(u32::MAX).to_be_bytes());
    big.write_all(&header).await.unwrap();
    let wire::ServerMsg::Failed { message } = answer(&mut big).await else {
        panic!("not refused")
    };
    assert!(message.contains("over the limit"), "{message}");
    drop(big);

    // One connection at a time here (a slot is free again once its answer was read): while
    // one waits for its request, another is told the node is busy.
    let mut first = UnixStream::connect(&socket).await.unwrap();
    let mut second = UnixStream::connect(&socket).await.unwrap();
    let wire::ServerMsg::Failed { message } = answer(&mut second).await else {
        panic!("not refused")
    };
    assert!(message.contains("busy"), "{message}");
    // The first still works once it sends its request.
    wire::write_json(
        &mut first,
        &wire::Request {
            v: wire::VERSION,
            op: Op::Gc { dry_run: true },
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        answer(&mut first).await,
        wire::ServerMsg::Done {
            reply: Reply::Collected(_)
        }
    ));
    drop(first);

    server.shutdown().await;
    assert!(!socket.exists());
    assert!(!control::answers(&db).await);
    node.close().await.unwrap();
}

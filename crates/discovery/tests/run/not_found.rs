//! Content nobody has is "not found", and the negative cache keeps repeats from dialling.

use std::time::Duration;

use crate::common::*;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::{DiscoveryConfig, Error, Scope};
use seedbank_sim::Behavior;

#[tokio::test(start_paused = true)]
async fn content_nobody_has_is_not_found_and_a_repeat_within_the_ttl_sends_no_message() {
    let mut net = Net::new();
    let mut peers = Vec::new();
    for i in 0..10 {
        let blobs = crate::common::dag(10 + i, 2, 4).blocks();
        peers.push(
            net.peer(&format!("p{i}"), Behavior::Honest, ms(15), blobs, None)
                .await,
        );
    }
    let client = net.node().await;
    let ttl = Duration::from_secs(30);
    let discovery = client.discovery(DiscoveryConfig {
        negative_ttl: ttl,
        ..config()
    });
    let absent = Scope::dag(*Blob::new(codec::DAG_CBOR, &b"\xa0"[..]).cid());

    let first = discovery.discover(&absent, &dyn_peers(&peers)).await;
    assert!(
        matches!(first, Err(Error::NotFound { cached: false, .. })),
        "{first:?}"
    );
    let sent = messages(&peers);
    assert!(sent > 0 && contacted(&peers) <= 8);

    let repeat = discovery.discover(&absent, &dyn_peers(&peers)).await;
    assert!(matches!(repeat, Err(Error::NotFound { cached: true, .. })));
    assert_eq!(messages(&peers), sent, "the repeat sent nothing");
    assert_eq!(
        (discovery.stats().runs, discovery.stats().negative_hits),
        (1, 1)
    );
    assert_eq!(client.haves.stats().builds, 1, "nor built anything");

    tokio::time::advance(ttl + Duration::from_secs(1)).await;
    let later = discovery.discover(&absent, &dyn_peers(&peers)).await;
    assert!(matches!(later, Err(Error::NotFound { cached: false, .. })));
    assert!(
        messages(&peers) > sent,
        "after the TTL, peers are asked again"
    );
    assert_eq!(discovery.stats().runs, 2);
}

#[tokio::test(start_paused = true)]
async fn a_named_scope_nobody_has_is_not_found_too() {
    let mut net = Net::new();
    let peer = net
        .peer(
            "p",
            Behavior::Honest,
            ms(5),
            raw_blobs("x", 0, 5),
            Some("other"),
        )
        .await;
    let client = net.node().await;
    let discovery = client.discovery(config());
    let result = discovery
        .discover(
            &Scope::named("nobody"),
            &dyn_peers(std::slice::from_ref(&peer)),
        )
        .await;
    assert!(matches!(result, Err(Error::NotFound { cached: false, .. })));
    let sent = peer.messages();
    let repeat = discovery
        .discover(
            &Scope::named("nobody"),
            &dyn_peers(std::slice::from_ref(&peer)),
        )
        .await;
    assert!(matches!(repeat, Err(Error::NotFound { cached: true, .. })));
    assert_eq!(peer.messages(), sent);
}

#[tokio::test(start_paused = true)]
async fn when_every_peer_failed_not_found_is_not_cached() {
    let peers = vec![
        storeless("f1", Behavior::Failing, ms(5)),
        storeless("h1", Behavior::Hanging, ms(5)),
    ];
    let mut net = Net::new();
    let client = net.node().await;
    let discovery = client.discovery(config());
    let scope = Scope::named("doc");
    let first = discovery.discover(&scope, &dyn_peers(&peers)).await;
    assert!(matches!(first, Err(Error::NotFound { cached: false, .. })));
    let sent = messages(&peers);
    let repeat = discovery.discover(&scope, &dyn_peers(&peers)).await;
    assert!(
        matches!(repeat, Err(Error::NotFound { cached: false, .. })),
        "an outage is no answer"
    );
    assert!(messages(&peers) > sent);
}

#[tokio::test(start_paused = true)]
async fn a_peer_not_asked_before_is_asked_despite_the_negative_cache() {
    let mut net = Net::new();
    let target = crate::common::dag(1, 2, 4);
    let empty = net
        .peer("empty", Behavior::Honest, ms(5), raw_blobs("x", 0, 3), None)
        .await;
    let holder = net
        .peer("holder", Behavior::Honest, ms(5), target.blocks(), None)
        .await;
    let client = net.node().await;
    let discovery = client.discovery(config());
    let scope = Scope::dag(target.root_cid());
    let first = discovery
        .discover(&scope, &dyn_peers(std::slice::from_ref(&empty)))
        .await;
    assert!(matches!(first, Err(Error::NotFound { cached: false, .. })));
    // The same peer again: answered from the cache.
    let repeat = discovery
        .discover(&scope, &dyn_peers(std::slice::from_ref(&empty)))
        .await;
    assert!(matches!(repeat, Err(Error::NotFound { cached: true, .. })));
    // A peer learned of since (a new ticket, peer exchange): asked at once.
    let report = discovery
        .discover(&scope, &dyn_peers(&[empty.clone(), holder.clone()]))
        .await
        .unwrap();
    assert!(report.complete, "{report}");
    assert!(holder.messages() > 0);
}

//! Named scopes, generations, deltas, the `Indexer` hook and attributes.

use std::collections::HashSet;

use crate::common::{open, open_with};
use cid::Cid;
use seedbank_blobstore::{codec, Blob, PutOptions};
use seedbank_index::{Annotations, Extracted, IndexConfig, IndexPutOptions, Indexer, ScopeInfo};

fn blobs(n: u8, tag: &str) -> Vec<Blob> {
    (0..n)
        .map(|i| Blob::new(codec::RAW, format!("{tag}-{i}").into_bytes()))
        .collect()
}

#[tokio::test]
async fn scope_members_come_back_in_insertion_order_with_growing_sequence_numbers() {
    let db = open().await;
    let first = db
        .put_many(blobs(3, "a"), IndexPutOptions::default().scope("doc:1"))
        .await
        .unwrap();
    let second = db
        .put_many(blobs(2, "b"), IndexPutOptions::default().scope("doc:1"))
        .await
        .unwrap();
    let all: Vec<_> = first.iter().chain(&second).copied().collect();
    assert_eq!(db.scope_members("doc:1").await.unwrap(), all);

    let since = db.scope_members_since("doc:1", 3).await.unwrap();
    assert_eq!(since, vec![(4, second[0]), (5, second[1])]);
    assert!(db.scope_members_since("doc:1", 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn generation_is_bumped_only_when_membership_changes() {
    let db = open().await;
    assert_eq!(
        db.generation("doc:2").await.unwrap(),
        0,
        "unknown scopes start at 0"
    );
    let put = |b| db.put_many(b, IndexPutOptions::default().scope("doc:2"));
    put(blobs(2, "x")).await.unwrap();
    assert_eq!(db.generation("doc:2").await.unwrap(), 2);
    put(blobs(2, "x")).await.unwrap();
    assert_eq!(
        db.generation("doc:2").await.unwrap(),
        2,
        "re-putting members changes nothing"
    );
    let other = db
        .put_many(blobs(1, "x"), IndexPutOptions::default().scope("doc:3"))
        .await
        .unwrap();
    assert_eq!(
        db.generation("doc:2").await.unwrap(),
        2,
        "other scopes are independent"
    );

    let snapshot = db.scope_snapshot("doc:2").await.unwrap();
    assert_eq!(snapshot.generation, 2);
    assert_eq!(snapshot.members.len(), 2);
    assert_eq!(db.scope_members("doc:3").await.unwrap(), other);
}

#[tokio::test]
async fn stored_blobs_can_join_and_leave_scopes_later() {
    let db = open().await;
    let cids = db
        .put_many(blobs(3, "j"), IndexPutOptions::default())
        .await
        .unwrap();
    let absent = *Blob::new(codec::RAW, &b"never stored"[..]).cid();
    let mut wanted = cids.clone();
    wanted.push(absent);

    let added = db
        .add_to_scope("later", &wanted, PutOptions::default())
        .await
        .unwrap();
    assert_eq!(added, 3, "blobs that are not stored are skipped");
    assert_eq!(
        db.add_to_scope("later", &cids, PutOptions::default())
            .await
            .unwrap(),
        0
    );
    assert_eq!(db.scope_members("later").await.unwrap(), cids);

    let removed = db
        .remove_from_scope("later", &cids[..1], PutOptions::default())
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(db.scope_members("later").await.unwrap(), cids[1..]);
    assert_eq!(db.generation("later").await.unwrap(), 4);
    let scopes = db.scopes().await.unwrap();
    assert_eq!(
        scopes,
        vec![ScopeInfo {
            name: "later".into(),
            generation: 4,
            last_seq: 3,
            removals: 1,
        }]
    );
}

/// Files every DAG-CBOR blob with links under `linked`, and tags each blob with its size.
struct Tagger;

impl Indexer for Tagger {
    fn annotate(&self, blob: &Blob, extracted: &Extracted) -> Annotations {
        let mut scopes = Vec::new();
        if !extracted.links.is_empty() {
            scopes.push("linked".to_string());
        }
        Annotations {
            scopes,
            attributes: vec![("size".into(), blob.len().to_string())],
        }
    }
}

#[tokio::test]
async fn indexer_hook_adds_scopes_and_attributes_at_staging_time() {
    let db = open_with(IndexConfig::default().with_indexer(Tagger)).await;
    let leaf = Blob::new(codec::RAW, &b"four"[..]);
    let node = ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(*leaf.cid())]);
    let node = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&node).unwrap());
    let opts = IndexPutOptions::default().scope("explicit");
    let cids = db
        .put_many(vec![node.clone(), leaf.clone()], opts)
        .await
        .unwrap();

    assert_eq!(db.scope_members("linked").await.unwrap(), vec![cids[0]]);
    assert_eq!(db.scope_members("explicit").await.unwrap(), cids);
    assert_eq!(
        db.attributes(&cids[1]).await.unwrap(),
        vec![("size".into(), "4".into())]
    );
    assert_eq!(
        db.find_by_attribute("size", "4").await.unwrap(),
        vec![cids[1]]
    );
    let size = node.len().to_string();
    assert_eq!(
        db.find_by_attribute("size", &size).await.unwrap(),
        vec![cids[0]]
    );
}

#[tokio::test]
async fn a_blob_stored_without_the_index_is_indexed_when_it_joins_a_scope() {
    let db = open().await;
    let leaf = Blob::new(codec::RAW, &b"leaf"[..]);
    let node = ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(*leaf.cid())]);
    let node = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&node).unwrap());
    let cid = db.store().put(node).await.unwrap();
    assert_eq!(db.links(&cid).await.unwrap(), None);

    assert_eq!(
        db.add_to_scope("late", &[cid], PutOptions::default())
            .await
            .unwrap(),
        1
    );
    assert_eq!(db.scope_members("late").await.unwrap(), vec![cid]);
    assert_eq!(db.links(&cid).await.unwrap(), Some(vec![*leaf.cid()]));
    assert_eq!(db.generation("late").await.unwrap(), 1);
}

#[tokio::test]
async fn a_scope_delta_lists_the_members_after_a_sequence_number_with_the_scope_counters() {
    let db = open().await;
    let unknown = db.scope_delta("nobody", 0).await.unwrap();
    assert_eq!(
        (unknown.generation, unknown.last_seq, unknown.removals),
        (0, 0, 0)
    );
    assert!(unknown.added.is_empty());

    let cids = db
        .put_many(blobs(3, "d"), IndexPutOptions::default().scope("doc:4"))
        .await
        .unwrap();
    let all = db.scope_delta("doc:4", 0).await.unwrap();
    assert_eq!((all.generation, all.last_seq, all.removals), (3, 3, 0));
    assert_eq!(all.added, vec![(1, cids[0]), (2, cids[1]), (3, cids[2])]);
    let tail = db.scope_delta("doc:4", 2).await.unwrap();
    assert_eq!((tail.generation, tail.last_seq), (3, 3));
    assert_eq!(tail.added, vec![(3, cids[2])]);
    assert!(db.scope_delta("doc:4", 3).await.unwrap().added.is_empty());
}

#[tokio::test]
async fn an_unchanged_removal_count_proves_a_scope_delta_complete() {
    let db = open().await;
    let put = |tag| db.put_many(blobs(2, tag), IndexPutOptions::default().scope("doc:5"));
    put("p").await.unwrap();
    let first = db.scope_delta("doc:5", 0).await.unwrap();
    let mut members: HashSet<Cid> = first.added.iter().map(|(_, c)| *c).collect();

    put("q").await.unwrap();
    let next = db.scope_delta("doc:5", first.last_seq).await.unwrap();
    assert_eq!(next.removals, first.removals, "only additions");
    members.extend(next.added.iter().map(|(_, c)| *c));
    let now: HashSet<Cid> = db
        .scope_members("doc:5")
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        members, now,
        "the first read plus the delta is the member set"
    );

    let gone = next.added[0].1;
    db.remove_from_scope("doc:5", &[gone], PutOptions::default())
        .await
        .unwrap();
    let after_removal = db.scope_delta("doc:5", next.last_seq).await.unwrap();
    assert_eq!(after_removal.removals, next.removals + 1);
    assert_eq!(after_removal.generation, next.generation + 1);
    assert_eq!(
        after_removal.last_seq, next.last_seq,
        "no sequence number handed out"
    );
    assert!(
        after_removal.added.is_empty(),
        "a removal is invisible in the members, only in the counter"
    );

    db.add_to_scope("doc:5", &[gone], PutOptions::default())
        .await
        .unwrap();
    let readded = db
        .scope_delta("doc:5", after_removal.last_seq)
        .await
        .unwrap();
    assert_eq!(
        readded.added,
        vec![(after_removal.last_seq + 1, gone)],
        "a member added again gets a new sequence number"
    );
    assert_eq!(readded.removals, after_removal.removals);
    let info = db.scopes().await.unwrap();
    assert_eq!(
        (info[0].generation, info[0].last_seq, info[0].removals),
        (readded.generation, readded.last_seq, readded.removals)
    );
}

//! The gateway over real HTTP on 127.0.0.1: raw blocks, CARs against the index's own
//! exporter, files with Range and sniffed types, HEAD, directories, error codes, CORS, the
//! request limit, and a block missing mid-stream cutting the body.

mod common;

use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use common::{car_blocks, Harness};
use futures_util::StreamExt;
use seedbank_files::testing::noise;
use seedbank_files::{AddOptions, Profile};
use seedbank_index::{car, DeleteOptions};

/// Adds `data` as a file of 256 KiB chunks; returns its root.
async fn add_file(h: &Harness, data: &[u8]) -> Cid {
    h.files()
        .add_reader(data, &AddOptions::new(Profile::UnixfsV0_2015))
        .await
        .unwrap()
        .root
}

/// A tree: `site/index.html`, `site/img.png`, `notes` (no extension), `big.bin`.
async fn add_tree(h: &Harness, big: &[u8]) -> Cid {
    let src = h.dir.path().join("tree");
    std::fs::create_dir_all(src.join("site")).unwrap();
    std::fs::write(src.join("site/index.html"), "<!doctype html><p>hi</p>").unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(noise(3000, 9));
    std::fs::write(src.join("site/img.png"), &png).unwrap();
    std::fs::write(src.join("notes"), "plain words").unwrap();
    std::fs::write(src.join("big.bin"), big).unwrap();
    h.files()
        .add_path(&src, &AddOptions::new(Profile::UnixfsV0_2015))
        .await
        .unwrap()
        .root
}

/// Reads a body chunk by chunk: the bytes received and whether it ended with an error.
async fn read_body(resp: reqwest::Response) -> (Vec<u8>, bool) {
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_raw_and_car_of_the_empty_identity_cid() {
    let h = Harness::start(|_| {}).await;
    let resp = h.get("/ipfs/bafkqaaa?format=raw").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = h.get("/ipfs/bafkqaaa?format=car").await;
    assert_eq!(resp.status(), 200);
    let (roots, blocks) = car_blocks(&resp.bytes().await.unwrap()).await;
    assert_eq!(roots, vec![common::cid("bafkqaaa")]);
    assert!(blocks.is_empty());
    let resp = h
        .client
        .head(h.url("/ipfs/bafkqaaa"))
        .header("Accept", "application/vnd.ipld.raw")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_streams_match_the_index_exporter_and_each_scope() {
    let h = Harness::start(|_| {}).await;
    let big = noise(1_300_000, 1);
    let root = add_tree(&h, &big).await;
    let mut exported = Vec::new();
    car::export_dag(&h.index, &root, &mut exported)
        .await
        .unwrap();
    let (_, want) = car_blocks(&exported).await;

    let resp = h.get(&format!("/ipfs/{root}?format=car&dups=n")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("content-length").is_none(), "streamed");
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    );
    let (roots, got) = car_blocks(&resp.bytes().await.unwrap()).await;
    assert_eq!(roots, vec![root]);
    assert_eq!(got, want, "dag-scope=all, dups=n is the exporter's walk");

    // Every block of the answer is the stored block (the reader verifies CIDs).
    let body = h
        .get(&format!(
            "/ipfs/{root}/big.bin?format=car&dag-scope=entity&entity-bytes=300000:600000"
        ))
        .await
        .bytes()
        .await
        .unwrap();
    let mut reader = car::CarReader::new(&body[..], 4 << 20).await.unwrap();
    let mut blocks = 0;
    while let Some(b) = reader.next_block().await.unwrap() {
        assert_eq!(h.index.store().get(&b.cid).await.unwrap().unwrap(), b.data);
        blocks += 1;
    }
    // The directory, the file's root, and of its 256 KiB chunks the two holding bytes
    // 300,000..=600,000.
    assert_eq!(blocks, 4);

    // Etags differ by scope and range; If-None-Match gives 304.
    let etag = |q: &'static str| {
        let h = &h;
        async move {
            h.get(&format!("/ipfs/{root}?format=car{q}"))
                .await
                .headers()["etag"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let (all, block) = (etag("").await, etag("&dag-scope=block").await);
    assert_ne!(all, block);
    let resp = h
        .get_with(
            &format!("/ipfs/{root}?format=car"),
            &[("If-None-Match", &all)],
        )
        .await;
    assert_eq!(resp.status(), 304);

    // HEAD: the headers, no body.
    let resp = h
        .client
        .head(h.url(&format!("/ipfs/{root}?format=car")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/vnd.ipld.car"));
    assert!(resp.bytes().await.unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_with_types_ranges_head_and_directories() {
    let h = Harness::start(|_| {}).await;
    let big = noise(1_300_000, 2);
    let root = add_tree(&h, &big).await;

    let resp = h.get(&format!("/ipfs/{root}/big.bin")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-length"],
        big.len().to_string().as_str()
    );
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=29030400, immutable"
    );
    assert_eq!(resp.bytes().await.unwrap(), big);

    let len = big.len();
    for (range, first, last) in [
        ("bytes=300000-600000", 300_000, 600_000),
        ("bytes=1000000-", 1_000_000, len - 1),
        ("bytes=-10", len - 10, len - 1),
        ("bytes=0-0", 0, 0),
    ] {
        let resp = h
            .get_with(&format!("/ipfs/{root}/big.bin"), &[("Range", range)])
            .await;
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(
            resp.headers()["content-range"],
            format!("bytes {first}-{last}/{len}").as_str()
        );
        assert_eq!(
            &resp.bytes().await.unwrap()[..],
            &big[first..=last],
            "{range}"
        );
    }
    let resp = h
        .get_with(
            &format!("/ipfs/{root}/big.bin"),
            &[("Range", "bytes=5000000-")],
        )
        .await;
    assert_eq!(resp.status(), 416);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );

    let resp = h.get(&format!("/ipfs/{root}/site/img.png")).await;
    assert_eq!(resp.headers()["content-type"], "image/png");
    let resp = h.get(&format!("/ipfs/{root}/notes")).await;
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.bytes().await.unwrap(), "plain words");
    let resp = h
        .get(&format!("/ipfs/{root}/notes?filename=a.json&download=true"))
        .await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"a.json\""
    );

    let resp = h
        .client
        .head(h.url(&format!("/ipfs/{root}/big.bin")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], len.to_string().as_str());
    assert!(resp.bytes().await.unwrap().is_empty());

    // A directory: redirected to its `/` form, then its index.html or a listing.
    let resp = h.get(&format!("/ipfs/{root}/site")).await;
    assert_eq!(resp.status(), 301);
    assert_eq!(
        resp.headers()["location"],
        format!("/ipfs/{root}/site/").as_str()
    );
    let resp = h.get(&format!("/ipfs/{root}/site/")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "<!doctype html><p>hi</p>");
    let resp = h.get(&format!("/ipfs/{root}/")).await;
    assert_eq!(resp.status(), 200);
    let listing = resp.text().await.unwrap();
    for name in ["big.bin", "notes", "site"] {
        assert!(
            listing.contains(&format!("href=\"./{}\"", name.replace('.', "%2E"))),
            "{listing}"
        );
    }

    let etag = h.get(&format!("/ipfs/{root}/notes")).await.headers()["etag"].clone();
    let resp = h
        .get_with(
            &format!("/ipfs/{root}/notes"),
            &[("If-None-Match", etag.to_str().unwrap())],
        )
        .await;
    assert_eq!(resp.status(), 304);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_missing_mid_stream_cuts_the_body() {
    let h = Harness::start(|_| {}).await;
    let data = noise(1_300_000, 3);
    let root = add_file(&h, &data).await;
    let leaves = h.index.links(&root).await.unwrap().unwrap();
    assert_eq!(leaves.len(), 5);
    h.index
        .delete(&leaves[3..4], DeleteOptions::forced())
        .await
        .unwrap();

    // The root is here: 200, then the stream is cut where the block is missing.
    let resp = h.get(&format!("/ipfs/{root}?format=car&dups=y")).await;
    assert_eq!(resp.status(), 200);
    let (got, failed) = read_body(resp).await;
    assert!(failed, "a short CAR must not end cleanly");
    // What did arrive is a valid CAR prefix with the blocks before the hole.
    let mut reader = car::CarReader::new(&got[..], 4 << 20).await.unwrap();
    let mut cids = Vec::new();
    while let Ok(Some(b)) = reader.next_block().await {
        cids.push(b.cid);
    }
    assert!(!cids.contains(&leaves[3]) && !cids.contains(&leaves[4]));

    // The same for the file's bytes.
    let resp = h.get(&format!("/ipfs/{root}")).await;
    assert_eq!(resp.status(), 200);
    let (got, failed) = read_body(resp).await;
    assert!(failed, "a short file must not end cleanly");
    assert!(got.len() <= 3 * 262_144 && data.starts_with(&got));

    // A range that avoids the hole is whole; entity-bytes too.
    let resp = h
        .get_with(&format!("/ipfs/{root}"), &[("Range", "bytes=0-99")])
        .await;
    assert_eq!(resp.status(), 206);
    assert_eq!(&resp.bytes().await.unwrap()[..], &data[..100]);
    let resp = h
        .get(&format!("/ipfs/{root}?format=car&entity-bytes=0:262143"))
        .await;
    let (body, failed) = read_body(resp).await;
    assert!(!failed);
    assert_eq!(car_blocks(&body).await.1, vec![root, leaves[0]]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_spec_status_codes() {
    let h = Harness::start(|_| {}).await;
    let root = add_file(&h, b"hello").await;
    let absent = common::cid("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
    let status = |path: String, headers: Vec<(&'static str, &'static str)>| {
        let h = &h;
        async move { h.get_with(&path, &headers).await.status().as_u16() }
    };
    assert_eq!(
        status("/ipfs/not-a-cid?format=raw".into(), vec![]).await,
        400
    );
    assert_eq!(
        status(format!("/ipfs/{absent}?format=raw"), vec![]).await,
        404
    );
    assert_eq!(
        status(format!("/ipfs/{absent}?format=car"), vec![]).await,
        404
    );
    assert_eq!(status(format!("/ipfs/{absent}"), vec![]).await, 404);
    assert_eq!(
        status(
            format!("/ipfs/{absent}?format=raw"),
            vec![("Cache-Control", "only-if-cached")]
        )
        .await,
        412
    );
    assert_eq!(
        status(format!("/ipfs/{root}/nope?format=car"), vec![]).await,
        404
    );
    assert_eq!(
        status(format!("/ipfs/{root}?format=tar"), vec![]).await,
        406
    );
    assert_eq!(
        status(format!("/ipfs/{root}?format=bogus"), vec![]).await,
        400
    );
    assert_eq!(
        status(
            format!("/ipfs/{root}"),
            vec![("Accept", "application/vnd.ipld.dag-json")]
        )
        .await,
        406
    );
    assert_eq!(
        status(
            format!("/ipfs/{root}"),
            vec![("Accept", "application/vnd.ipld.car; version=2")]
        )
        .await,
        406
    );
    assert_eq!(
        status(format!("/ipfs/{root}?format=car&dag-scope=some"), vec![]).await,
        400
    );
    assert_eq!(
        status(format!("/ipfs/{root}?format=car&entity-bytes=x"), vec![]).await,
        400
    );
    assert_eq!(
        status(format!("/ipfs/{root}?format=car&entity-bytes=9:*"), vec![]).await,
        400
    );
    assert_eq!(
        status(format!("/ipfs/{root}"), vec![("Service-Worker", "script")]).await,
        400
    );
    assert_eq!(status("/ipfs/".into(), vec![]).await, 400);
    assert_eq!(status(format!("/ipns/{root}"), vec![]).await, 501);
    assert_eq!(status("/elsewhere".into(), vec![]).await, 404);
    let long = format!("/ipfs/{root}/{}", "a/".repeat(3000));
    assert_eq!(status(long, vec![]).await, 414);
    let deep = format!("/ipfs/{root}/{}", "a/".repeat(100));
    assert_eq!(status(deep, vec![]).await, 400);
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let resp = h
            .client
            .request(method.parse().unwrap(), h.url(&format!("/ipfs/{root}")))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "GET, HEAD, OPTIONS");
    }
    // A header section past the limit is refused by the HTTP layer.
    let huge = "x".repeat(64 * 1024);
    let resp = h
        .client
        .get(h.url(&format!("/ipfs/{root}")))
        .header("X-Big", huge)
        .send()
        .await;
    assert!(resp.map(|r| r.status().as_u16() == 431).unwrap_or(true));
    // CORS: any origin, preflights answered.
    let resp = h
        .get_with(
            &format!("/ipfs/{root}?format=raw"),
            &[("Origin", "https://app.example")],
        )
        .await;
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let resp = h
        .client
        .request(reqwest::Method::OPTIONS, h.url(&format!("/ipfs/{root}")))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "range")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    h.stop().await;

    // Strict trustless mode: no format, no deserialized answer.
    let h = Harness::start(|c| c.deserialized_responses = false).await;
    let root = add_file(&h, b"hello").await;
    assert_eq!(h.get(&format!("/ipfs/{root}")).await.status(), 400);
    assert_eq!(
        h.get(&format!("/ipfs/{root}?format=raw")).await.status(),
        200
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_request_limit_the_answer_is_429_until_a_body_is_done() {
    let h = Harness::start(|c| {
        c.max_concurrent_requests = 2;
        c.stall_timeout = Duration::from_secs(120);
    })
    .await;
    // Large enough that a body never fits in the socket buffers.
    let data = noise(24 << 20, 4);
    let root = add_file(&h, &data).await;
    let car = format!("/ipfs/{root}?format=car");
    // Two responses whose bodies are not read hold both slots.
    let first = h.get(&car).await;
    let second = h.get(&car).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let resp = h.get(&format!("/ipfs/{root}?format=raw")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    // Reading one body to its end frees its slot.
    let (body, failed) = read_body(first).await;
    assert!(!failed && body.len() > data.len());
    let mut status = 0;
    for _ in 0..100 {
        status = h
            .get(&format!("/ipfs/{root}?format=raw"))
            .await
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    drop(second);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_blocks_of_other_codecs_and_paths_through_dag_cbor() {
    use std::collections::BTreeMap;

    use ipld_core::ipld::Ipld;
    use seedbank_blobstore::{codec, Blob};

    let h = Harness::start(|_| {}).await;
    let leaf = add_file(&h, b"leaf bytes").await;
    let doc = Ipld::Map(BTreeMap::from([(
        "a".to_string(),
        Ipld::List(vec![Ipld::Integer(1), Ipld::Link(leaf)]),
    )]));
    let blob = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&doc).unwrap());
    let (doc_cid, doc_bytes) = blob.clone().into_parts();
    h.index.put(blob).await.unwrap();

    let resp = h.get(&format!("/ipfs/{doc_cid}")).await;
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.ipld.dag-cbor"
    );
    assert_eq!(resp.bytes().await.unwrap(), doc_bytes);
    let resp = h.get(&format!("/ipfs/{doc_cid}/a/1")).await;
    assert_eq!(
        resp.bytes().await.unwrap(),
        Bytes::from_static(b"leaf bytes")
    );
    let resp = h.get(&format!("/ipfs/{doc_cid}/a/1?format=car")).await;
    assert_eq!(
        car_blocks(&resp.bytes().await.unwrap()).await.1,
        vec![doc_cid, leaf]
    );
    assert_eq!(h.get(&format!("/ipfs/{doc_cid}/a/0")).await.status(), 501);
    assert_eq!(h.get(&format!("/ipfs/{doc_cid}/b")).await.status(), 404);
    h.stop().await;
}

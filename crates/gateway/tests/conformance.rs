//! The trustless-gateway cases of ipfs/gateway-conformance (`tests/trustless_gateway_car_test.go`
//! and `tests/trustless_gateway_raw_test.go` at commit 22c76440), ported to Rust over the
//! suite's own fixtures (`testdata/gateway-conformance/`). Each CAR case runs twice, as
//! the suite's `StandardCARTestTransforms` does: with `?format=car` and with
//! `Accept: application/vnd.ipld.car`, and checks the standard CAR headers.
//!
//! Expected block lists come from outside the gateway: paths through seedbank-files'
//! `resolve`, descendants from the index's link table, HAMT shards by link-name shape.

mod common;

use cid::Cid;
use common::{car_blocks, cid, descendants, Harness};
use ipld_core::ipld::Ipld;

/// The suite's `carResponseHeaders`.
fn check_car_headers(resp: &reqwest::Response, case: &str) {
    let h = resp.headers();
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(get("x-content-type-options"), "nosniff", "{case}");
    assert_eq!(get("accept-ranges"), "none", "{case}");
    assert!(
        get("content-type").contains("application/vnd.ipld.car"),
        "{case}"
    );
    let cd = get("content-disposition");
    assert!(
        cd.starts_with("attachment; filename=\"") && cd.ends_with(".car\""),
        "{case}: {cd}"
    );
    assert!(!get("etag").is_empty(), "{case}");
}

/// Runs a CAR case both ways; returns the blocks of each answer (which must agree).
async fn car_case(h: &Harness, case: &str, path: &str, query: &str) -> Vec<Cid> {
    let sep = if query.is_empty() { "" } else { "&" };
    let with_format = h.get(&format!("{path}?format=car{sep}{query}")).await;
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let with_accept = h
        .get_with(
            &format!("{path}{q}"),
            &[("Accept", "application/vnd.ipld.car")],
        )
        .await;
    let mut answers = Vec::new();
    for (how, resp) in [("format=car", with_format), ("Accept", with_accept)] {
        assert_eq!(resp.status(), 200, "{case} ({how})");
        check_car_headers(&resp, &format!("{case} ({how})"));
        let body = resp.bytes().await.unwrap();
        answers.push(car_blocks(&body).await.1);
    }
    assert_eq!(answers[0], answers[1], "{case}: both requests agree");
    answers.remove(0)
}

async fn resolve(h: &Harness, path: &str) -> Cid {
    h.files().resolve(path).await.unwrap()
}

/// Shards of the HAMT under `root`, depth first, root left out (`MustGetCidsInHAMT`).
async fn hamt_shards(h: &Harness, root: &Cid) -> Vec<Cid> {
    let mut out = Vec::new();
    let mut stack = vec![*root];
    while let Some(shard) = stack.pop() {
        let bytes = h.index.store().get(&shard).await.unwrap().unwrap();
        let node = ipld_dagpb::PbNode::from_bytes(bytes).unwrap();
        let subs: Vec<Cid> = node
            .links
            .iter()
            .filter(|l| l.name.as_deref().is_some_and(|n| n.len() == 2))
            .map(|l| l.cid)
            .collect();
        if shard != *root {
            out.push(shard);
        }
        stack.extend(subs.into_iter().rev());
    }
    out
}

/// Shards below `root` on the way to `name` (`MustGetCIDsInHAMTTraversal`), found by
/// searching link names (no hashing), and the entry's CID.
async fn hamt_traversal(h: &Harness, root: &Cid, name: &str) -> (Vec<Cid>, Cid) {
    async fn search(h: &Harness, shard: Cid, name: &str, path: &mut Vec<Cid>) -> Option<Cid> {
        let bytes = h.index.store().get(&shard).await.unwrap().unwrap();
        let node = ipld_dagpb::PbNode::from_bytes(bytes).unwrap();
        for l in &node.links {
            let n = l.name.as_deref().unwrap_or_default();
            if n.len() > 2 && &n[2..] == name {
                return Some(l.cid);
            }
        }
        for l in &node.links {
            if l.name.as_deref().is_some_and(|n| n.len() == 2) {
                path.push(l.cid);
                if let Some(found) = Box::pin(search(h, l.cid, name, path)).await {
                    return Some(found);
                }
                path.pop();
            }
        }
        None
    }
    let mut path = Vec::new();
    let found = search(h, *root, name, &mut path).await.unwrap();
    (path, found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_car_pathing() {
    let h = Harness::start(|_| {}).await;
    let two = h.fixture("subdir-with-two-single-block-files.car").await;
    let hamt = h
        .fixture("single-layer-hamt-with-multi-block-files.car")
        .await;
    let cbor_dir = h.fixture("dir-with-dag-cbor-with-links.car").await;

    // GET default CAR response with pathing through UnixFS Directory
    let got = car_case(
        &h,
        "pathing through a directory",
        &format!("/ipfs/{two}/subdir/ascii.txt"),
        "",
    )
    .await;
    let subdir = resolve(&h, &format!("{two}/subdir")).await;
    let ascii = resolve(&h, &format!("{two}/subdir/ascii.txt")).await;
    assert_eq!(got, vec![two, subdir, ascii]);

    // GET default CAR response of UnixFS file on a path with HAMT-sharded directory
    let got = car_case(
        &h,
        "pathing through a HAMT",
        &format!("/ipfs/{hamt}/685.txt"),
        "",
    )
    .await;
    let (shards, file) = hamt_traversal(&h, &hamt, "685.txt").await;
    assert_eq!(file, resolve(&h, &format!("{hamt}/685.txt")).await);
    let mut want = vec![hamt];
    want.extend(shards);
    want.push(file);
    want.extend(descendants(&h.index, &file).await);
    assert_eq!(got, want);

    // GET default CAR response of UnixFS file on a path with DAG-CBOR as root CID
    let document = resolve(&h, &format!("{cbor_dir}/document")).await;
    assert_eq!(document.codec(), 0x71);
    let doc_bytes = h.index.store().get(&document).await.unwrap().unwrap();
    let doc: Ipld = serde_ipld_dagcbor::from_slice(&doc_bytes).unwrap();
    let Ipld::Map(doc) = doc else { panic!() };
    let Some(Ipld::Map(files)) = doc.get("files") else {
        panic!()
    };
    let Some(Ipld::Link(single)) = files.get("single") else {
        panic!()
    };
    let got = car_case(
        &h,
        "pathing through DAG-CBOR",
        &format!("/ipfs/{document}/files/single"),
        "",
    )
    .await;
    let mut want = vec![document, *single];
    want.extend(descendants(&h.index, single).await);
    assert_eq!(got, want);

    // GET default CAR response for non-existing file: 404 (an allowed answer).
    for (how, resp) in [
        (
            "format",
            h.get(&format!("/ipfs/{two}/subdir/i-do-not-exist?format=car"))
                .await,
        ),
        (
            "accept",
            h.get_with(
                &format!("/ipfs/{two}/subdir/i-do-not-exist"),
                &[("Accept", "application/vnd.ipld.car")],
            )
            .await,
        ),
    ] {
        assert_eq!(resp.status(), 404, "{how}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_car_dag_scope_block() {
    let h = Harness::start(|_| {}).await;
    let two = h.fixture("subdir-with-two-single-block-files.car").await;
    let hamt = h
        .fixture("single-layer-hamt-with-multi-block-files.car")
        .await;
    let subdir = resolve(&h, &format!("{two}/subdir")).await;
    let ascii = resolve(&h, &format!("{two}/subdir/ascii.txt")).await;

    let got = car_case(
        &h,
        "block of a directory on a path",
        &format!("/ipfs/{two}/subdir"),
        "dag-scope=block",
    )
    .await;
    assert_eq!(got, vec![two, subdir]);
    let got = car_case(
        &h,
        "block of a file on a path",
        &format!("/ipfs/{two}/subdir/ascii.txt"),
        "dag-scope=block",
    )
    .await;
    assert_eq!(got, vec![two, subdir, ascii]);
    let got = car_case(
        &h,
        "block of a file in a HAMT",
        &format!("/ipfs/{hamt}/1.txt"),
        "dag-scope=block",
    )
    .await;
    let (shards, file) = hamt_traversal(&h, &hamt, "1.txt").await;
    let mut want = vec![hamt];
    want.extend(shards);
    want.push(file);
    assert_eq!(got, want);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_car_dag_scope_entity() {
    let h = Harness::start(|_| {}).await;
    let two = h.fixture("subdir-with-two-single-block-files.car").await;
    let hamt = h
        .fixture("single-layer-hamt-with-multi-block-files.car")
        .await;
    let mixed = h.fixture("subdir-with-mixed-block-files.car").await;
    let cbor_dir = h.fixture("dir-with-dag-cbor-with-links.car").await;

    let got = car_case(
        &h,
        "entity of a directory",
        &format!("/ipfs/{two}"),
        "dag-scope=entity",
    )
    .await;
    assert_eq!(got, vec![two]);

    let got = car_case(
        &h,
        "entity of a HAMT",
        &format!("/ipfs/{hamt}"),
        "dag-scope=entity",
    )
    .await;
    let mut want = vec![hamt];
    want.extend(hamt_shards(&h, &hamt).await);
    assert_eq!(got, want);

    let subdir = resolve(&h, &format!("{mixed}/subdir")).await;
    let ascii = resolve(&h, &format!("{mixed}/subdir/ascii.txt")).await;
    let got = car_case(
        &h,
        "entity of a file",
        &format!("/ipfs/{mixed}/subdir/ascii.txt"),
        "dag-scope=entity",
    )
    .await;
    assert_eq!(got, vec![mixed, subdir, ascii]);

    let multi = resolve(&h, &format!("{mixed}/subdir/multiblock.txt")).await;
    let got = car_case(
        &h,
        "entity of a chunked file",
        &format!("/ipfs/{mixed}/subdir/multiblock.txt"),
        "dag-scope=entity",
    )
    .await;
    let mut want = vec![mixed, subdir, multi];
    want.extend(descendants(&h.index, &multi).await);
    assert_eq!(got, want);

    let document = resolve(&h, &format!("{cbor_dir}/document")).await;
    let got = car_case(
        &h,
        "entity of DAG-CBOR with links",
        &format!("/ipfs/{cbor_dir}/document"),
        "dag-scope=entity",
    )
    .await;
    assert_eq!(got, vec![cbor_dir, document]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_car_dag_scope_all() {
    let h = Harness::start(|_| {}).await;
    let mixed = h.fixture("subdir-with-mixed-block-files.car").await;
    let subdir = resolve(&h, &format!("{mixed}/subdir")).await;
    let multi = resolve(&h, &format!("{mixed}/subdir/multiblock.txt")).await;

    let got = car_case(
        &h,
        "all of a directory",
        &format!("/ipfs/{mixed}/subdir"),
        "dag-scope=all",
    )
    .await;
    let mut want = vec![mixed, subdir];
    want.extend(descendants(&h.index, &subdir).await);
    assert_eq!(got, want);

    let got = car_case(
        &h,
        "all of a chunked file",
        &format!("/ipfs/{mixed}/subdir/multiblock.txt"),
        "dag-scope=all",
    )
    .await;
    let mut want = vec![mixed, subdir, multi];
    want.extend(descendants(&h.index, &multi).await);
    assert_eq!(got, want);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_car_entity_bytes() {
    let h = Harness::start(|_| {}).await;
    let hamt = h
        .fixture("single-layer-hamt-with-multi-block-files.car")
        .await;
    let mixed = h.fixture("subdir-with-mixed-block-files.car").await;
    let missing = h.fixture("file-3k-and-3-blocks-missing-block.car").await;
    let sorted = |mut v: Vec<Cid>| {
        v.sort();
        v
    };

    // Missing block after the range: still a complete answer.
    let got = car_case(
        &h,
        "missing block after the range",
        &format!("/ipfs/{missing}"),
        "dag-scope=entity&entity-bytes=0:1000",
    )
    .await;
    assert_eq!(
        sorted(got),
        sorted(vec![
            missing,
            cid("QmPKt7ptM2ZYSGPUc8PmPT2VBkLDK3iqpG9TBJY7PCE9rF")
        ])
    );
    // Missing block before the range.
    let got = car_case(
        &h,
        "missing block before the range",
        &format!("/ipfs/{missing}"),
        "dag-scope=entity&entity-bytes=2200:*",
    )
    .await;
    assert_eq!(
        sorted(got),
        sorted(vec![
            missing,
            cid("QmWXY482zQdwecnfBsj78poUUuPXvyw2JAFAEMw4tzTavV")
        ])
    );

    let subdir = resolve(&h, &format!("{mixed}/subdir")).await;
    let multi = resolve(&h, &format!("{mixed}/subdir/multiblock.txt")).await;
    let leaves = descendants(&h.index, &multi).await;
    assert_eq!(leaves.len(), 5);

    let got = car_case(
        &h,
        "entity-bytes of a full file",
        &format!("/ipfs/{mixed}/subdir/multiblock.txt"),
        "dag-scope=entity&entity-bytes=0:*",
    )
    .await;
    let mut want = vec![mixed, subdir, multi];
    want.extend(leaves.clone());
    assert_eq!(got, want);

    let got = car_case(
        &h,
        "entity-bytes of a directory",
        &format!("/ipfs/{hamt}"),
        "dag-scope=entity&entity-bytes=0:*",
    )
    .await;
    let mut want = vec![hamt];
    want.extend(hamt_shards(&h, &hamt).await);
    assert_eq!(got, want);

    let file = format!("/ipfs/{multi}");
    let with = |range: &[Cid]| {
        let mut v = vec![multi];
        v.extend_from_slice(range);
        v
    };
    for (range, want) in [
        ("512:*", with(&leaves[2..])),
        ("512:1023", with(&leaves[2..4])),
        ("512:-256", with(&leaves[2..4])),
        ("-5:*", with(&leaves[3..])),
        ("-9999:*", with(&leaves)),
        ("-9999:-3", with(&leaves[..4])),
        ("0:0", with(&leaves[..1])),
    ] {
        let got = car_case(
            &h,
            &format!("entity-bytes={range}"),
            &file,
            &format!("dag-scope=entity&entity-bytes={range}"),
        )
        .await;
        assert_eq!(got, want, "entity-bytes={range}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_car_order_and_duplicates() {
    let h = Harness::start(|_| {}).await;
    let dir = h.fixture("dir-with-duplicate-files.car").await;
    let multiblock: Vec<Cid> = [
        "bafkreie5noke3mb7hqxukzcy73nl23k6lxszxi5w3dtmuwz62wnvkpsscm",
        "bafkreih4ephajybraj6wnxsbwjwa77fukurtpl7oj7t7pfq545duhot7cq",
        "bafkreigu7buvm3cfunb35766dn7tmqyh2um62zcio63en2btvxuybgcpue",
        "bafkreicll3huefkc3qnrzeony7zcfo7cr3nbx64hnxrqzsixpceg332fhe",
        "bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm",
    ]
    .map(cid)
    .to_vec();
    let r = |p: &str| format!("{dir}/{p}");
    let ascii = resolve(&h, &r("ascii.txt")).await;
    let ascii_copy = resolve(&h, &r("ascii-copy.txt")).await;
    let hello = resolve(&h, &r("hello.txt")).await;
    let multi = resolve(&h, &r("multiblock.txt")).await;
    let mut with_dups = vec![dir, ascii, ascii_copy, hello, multi];
    with_dups.extend(multiblock.clone());
    let mut without = vec![dir, ascii, hello, multi];
    without.extend(multiblock.clone());

    let ask = |path: String, accept: &'static str| {
        let h = &h;
        async move {
            let resp = h.get_with(&path, &[("Accept", accept)]).await;
            assert_eq!(resp.status(), 200, "{accept}");
            let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
            let body = resp.bytes().await.unwrap();
            (ct, car_blocks(&body).await.1)
        }
    };
    // order=dfs and dups=y
    let (ct, got) = ask(
        format!("/ipfs/{dir}"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=y",
    )
    .await;
    assert!(
        ct.contains("application/vnd.ipld.car")
            && ct.contains("order=dfs")
            && ct.contains("dups=y"),
        "{ct}"
    );
    assert_eq!(got, with_dups);
    // order=dfs and dups=n
    let (ct, got) = ask(
        format!("/ipfs/{dir}"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=n",
    )
    .await;
    assert!(ct.contains("order=dfs") && ct.contains("dups=n"), "{ct}");
    assert_eq!(got, without);
    // order=unk smoke test: an explicit order comes back, every block is there.
    let (ct, got) = ask(
        format!("/ipfs/{dir}"),
        "application/vnd.ipld.car; version=1; order=unk",
    )
    .await;
    assert!(ct.contains("order="), "{ct}");
    for c in &with_dups {
        assert!(got.contains(c));
    }
    // Identity CID with dups=y: no block at all.
    let (ct, got) = ask(
        "/ipfs/bafkqaf3imvwgy3zaneqgc3janfxgy2lomvscay3jmqfa".into(),
        "application/vnd.ipld.car; dups=y",
    )
    .await;
    assert!(ct.contains("dups=y"), "{ct}");
    assert!(got.is_empty());
    // ?format=car respects Accept's order and dups.
    let (ct, got) = ask(
        format!("/ipfs/{dir}?format=car"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=y",
    )
    .await;
    assert!(ct.contains("order=dfs") && ct.contains("dups=y"), "{ct}");
    assert_eq!(got, with_dups);
    // ?car-order=dfs over order=unk in Accept.
    let (ct, _) = ask(
        format!("/ipfs/{dir}?format=car&car-order=dfs"),
        "application/vnd.ipld.car; order=unk",
    )
    .await;
    assert!(ct.contains("order=dfs"), "{ct}");
    // ?car-dups=y over dups=n in Accept.
    let (ct, got) = ask(
        format!("/ipfs/{dir}?format=car&car-dups=y"),
        "application/vnd.ipld.car; dups=n",
    )
    .await;
    assert!(ct.contains("dups=y"), "{ct}");
    assert_eq!(got, with_dups);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_car_format_precedence() {
    let h = Harness::start(|_| {}).await;
    let root = h.fixture("gateway-raw-block.car").await;
    let dir = resolve(&h, &format!("{root}/dir")).await;
    let resp = h
        .get_with(
            &format!("/ipfs/{dir}?format=car"),
            &[("Accept", "application/vnd.ipld.raw")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("application/vnd.ipld.car"));
    let resp = h
        .get_with(
            &format!("/ipfs/{dir}?format=raw"),
            &[("Accept", "application/vnd.ipld.car")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/vnd.ipld.raw");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_raw() {
    let h = Harness::start(|_| {}).await;
    let root = h.fixture("gateway-raw-block.car").await;
    let dir = resolve(&h, &format!("{root}/dir")).await;
    let ascii = resolve(&h, &format!("{root}/dir/ascii.txt")).await;
    let block = |c: Cid| {
        let h = &h;
        async move { h.index.store().get(&c).await.unwrap().unwrap() }
    };
    let dir_bytes = block(dir).await;
    let ascii_bytes = block(ascii).await;

    // GET with format=raw param returns a raw block
    let resp = h.get(&format!("/ipfs/{dir}?format=raw")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), dir_bytes);
    // GET with application/vnd.ipld.raw header returns a raw block
    let raw = [("Accept", "application/vnd.ipld.raw")];
    let resp = h.get_with(&format!("/ipfs/{dir}"), &raw).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), dir_bytes);
    // ... returns expected response headers
    let resp = h.get_with(&format!("/ipfs/{ascii}"), &raw).await;
    let hd = resp.headers().clone();
    assert_eq!(hd["content-type"], "application/vnd.ipld.raw");
    assert_eq!(hd["content-length"], ascii_bytes.len().to_string().as_str());
    assert!(hd["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment;"));
    assert_eq!(hd["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap(), ascii_bytes);
    // ... and filename param returns a custom Content-Disposition
    let resp = h
        .get_with(&format!("/ipfs/{ascii}?filename=foobar.bin"), &raw)
        .await;
    let cd = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cd.contains("attachment;") && cd.contains("filename=\"foobar.bin"),
        "{cd}"
    );
    // ... returns expected caching headers
    let resp = h.get_with(&format!("/ipfs/{ascii}"), &raw).await;
    let hd = resp.headers();
    assert!(hd.contains_key("etag"));
    assert_eq!(hd["x-ipfs-path"], format!("/ipfs/{ascii}").as_str());
    assert!(hd["x-ipfs-roots"]
        .to_str()
        .unwrap()
        .contains(&ascii.to_string()));
    let cc = hd["cache-control"].to_str().unwrap().replace(' ', "");
    let directives: Vec<&str> = cc.split(',').collect();
    assert!(
        directives.contains(&"public") && directives.contains(&"immutable"),
        "{cc}"
    );
    let max_age: u64 = directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age >= 29030400);

    // TestTrustlessRawRanges: a single range (the suite picks one at random) is a 206 with
    // the bytes and Content-Range; several ranges get the first.
    let len = ascii_bytes.len();
    for (range, first, last) in [
        ("bytes=0-4", 0, 4),
        ("bytes=3-", 3, len - 1),
        ("bytes=-5", len - 5, len - 1),
        ("bytes=2-6,8-10", 2, 6),
    ] {
        let resp = h
            .get_with(&format!("/ipfs/{ascii}"), &[raw[0], ("Range", range)])
            .await;
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(
            resp.headers()["content-range"],
            format!("bytes {first}-{last}/{len}").as_str(),
            "{range}"
        );
        assert_eq!(
            resp.bytes().await.unwrap(),
            ascii_bytes.slice(first..=last),
            "{range}"
        );
    }
    h.stop().await;
}

//! A gateway on 127.0.0.1:0 over a fresh store, and helpers to read its CAR answers.
#![allow(dead_code)]

use std::path::Path;

use cid::Cid;
use seedbank_blobstore::{Config, Store};
use seedbank_files::Files;
use seedbank_gateway::{Gateway, GatewayConfig};
use seedbank_index::{car, Index, IndexConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub index: Index,
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    /// A store and a gateway serving it, `tweak` applied to the default config.
    pub async fn start(tweak: impl FnOnce(&mut GatewayConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("gw.db"), Config::default()).unwrap();
        let index = Index::open(store, IndexConfig::default()).await.unwrap();
        let mut config = GatewayConfig::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        let gateway = Gateway::new(index.clone(), config);
        let listener = gateway.bind().await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        // See the rustls dev-dependency: needed once iroh is in the same build.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap();
        Harness {
            dir,
            index,
            base,
            client,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn files(&self) -> Files {
        Files::new(self.index.clone())
    }

    /// Imports a CAR file; returns its first root.
    pub async fn import(&self, path: &Path) -> Cid {
        let file = tokio::fs::File::open(path).await.unwrap();
        let report = car::import(&self.index, file, car::ImportOptions::default())
            .await
            .unwrap();
        report.roots[0]
    }

    /// Imports a fixture of `testdata/gateway-conformance/`.
    pub async fn fixture(&self, name: &str) -> Cid {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/gateway-conformance")
            .join(name);
        self.import(&path).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.index.store().close().await.unwrap();
    }
}

/// The roots and block CIDs of a CAR, in order (panics on a malformed CAR).
pub async fn car_blocks(bytes: &[u8]) -> (Vec<Cid>, Vec<Cid>) {
    let mut reader = car::CarReader::new(bytes, 4 << 20).await.unwrap();
    let roots = reader.roots().to_vec();
    let mut cids = Vec::new();
    while let Some(block) = reader.next_block().await.unwrap() {
        cids.push(block.cid);
    }
    (roots, cids)
}

/// Every block under `cid` depth first, links in order, duplicates kept, `cid` left out
/// (the suite's `MustGetDescendantsCids`), from the index's link table.
pub async fn descendants(index: &Index, cid: &Cid) -> Vec<Cid> {
    let mut out = Vec::new();
    let mut stack = vec![index.links(cid).await.unwrap().unwrap_or_default()];
    while let Some(frame) = stack.last_mut() {
        if frame.is_empty() {
            stack.pop();
            continue;
        }
        let next = frame.remove(0);
        out.push(next);
        stack.push(index.links(&next).await.unwrap().unwrap_or_default());
    }
    out
}

pub fn cid(s: &str) -> Cid {
    Cid::try_from(s).unwrap()
}

//! seedbank's read-only HTTP gateway: the IPFS Trustless Gateway over a seedbank store, so
//! Kubo, Helia, `@helia/verified-fetch`, curl or a CDN can fetch blocks, DAGs and files
//! from it, and local apps and browsers can show its files.
//!
//! - `GET`/`HEAD /ipfs/{cid}[/{path}]` with `?format=raw` or
//!   `Accept: application/vnd.ipld.raw`: the block (a `Range` of it too).
//! - `?format=car` or `Accept: application/vnd.ipld.car`: a CARv1 stream, depth first
//!   (`order=dfs`), `dups=y|n` (default `n`), `dag-scope=block|entity|all` and
//!   `entity-bytes=from:to` (negative offsets count from the end, `*` is the end). The
//!   blocks that verify the path come first. The `Content-Type` names
//!   `version=1; order=dfs; dups=…`.
//! - Without a format: a UnixFS file's bytes with a sniffed `Content-Type` (by name, then
//!   magic bytes) and `Range` → 206; a directory's `index.html` or an HTML listing (a
//!   directory without the trailing `/` is redirected to it); other blocks with their
//!   codec's type. [`GatewayConfig::deserialized_responses`] turns this off (strict
//!   trustless mode: 400 without a format).
//! - Paths walk UnixFS directories (HAMT-sharded ones by the name's hash, one shard per
//!   level), dag-pb links by name and DAG-CBOR fields and links.
//!
//! Status codes follow the specs: 404 for a root (or a path block) that is not stored, 412
//! with `Cache-Control: only-if-cached`, 400 for a bad CID, path or parameter, 406 for
//! formats or CAR variants not served, 416 for a range past the end, 429 (with
//! `Retry-After`) past the request limit, 405 for any method but `GET`, `HEAD` and
//! `OPTIONS` (there is no write route). Successful answers carry `Etag`,
//! `Cache-Control: public, max-age=29030400, immutable`, `X-Content-Type-Options: nosniff`,
//! `X-Ipfs-Path`, `X-Ipfs-Roots`, and `Content-Disposition: attachment` for raw and CAR;
//! CORS allows any origin. `/ipfs/bafkqaaa` (the empty identity CID) answers the probes.
//!
//! **Streaming and its end.** CAR and file bodies are produced block by block from the
//! store by a task of their own into a channel of a few chunks: memory per response is a
//! few blocks, whatever the DAG's size. The status is sent once the root and the path are
//! resolved; a block that turns out to be missing later (or a stall or time limit) cuts the
//! body with an error — the chunked encoding is never terminated — so a client never takes
//! a short answer for a complete one (the spec's "terminate the stream").
//!
//! **Bounds.** Concurrent requests (a slot is held until the body is done, not only until
//! the headers), connections, header bytes and count, path length and segments, time to
//! the headers, a stalled client, total response time, blocks fetched ahead, the `dups=n`
//! memory and the walk's depth are all limited by [`GatewayConfig`]. The default address is
//! `127.0.0.1:8080`.
//!
//! With the `client` feature, [`client::GatewayPeer`] syncs *from* any trustless gateway:
//! a discovery peer over HTTP that one run mixes with QUIC peers.
//!
//! ```
//! use seedbank_blobstore::{Config, Store};
//! use seedbank_files::{AddOptions, Files, Profile};
//! use seedbank_gateway::{Gateway, GatewayConfig};
//! use seedbank_index::{Index, IndexConfig};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("gw.db"), Config::default())?;
//! let index = Index::open(store, IndexConfig::default()).await?;
//! let added = Files::new(index.clone())
//!     .add_reader(&b"hello gateway"[..], &AddOptions::new(Profile::UnixfsV1_2025))
//!     .await?;
//!
//! let mut config = GatewayConfig::default();
//! config.listen = "127.0.0.1:0".parse()?;
//! let gateway = Gateway::new(index.clone(), config);
//! let listener = gateway.bind().await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(gateway.serve(listener, async move {
//!     let _ = stopped.await;
//! }));
//!
//! let mut conn = tokio::net::TcpStream::connect(addr).await?;
//! let request = format!(
//!     "GET /ipfs/{}?format=raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
//!     added.root
//! );
//! conn.write_all(request.as_bytes()).await?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200 OK"));
//! assert!(response.ends_with("hello gateway"));
//!
//! let _ = stop.send(());
//! server.await??;
//! index.store().close().await?;
//! # Ok(())
//! # }
//! ```

mod blocks;
mod body;
mod car;
#[cfg(feature = "client")]
pub mod client;
mod deserialized;
mod handler;
mod request;
mod resolve;
mod response;
mod unixfs;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::on;
use axum::Router;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use seedbank_index::Index;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::cors::{Any, CorsLayer};

/// Limits and switches of a [`Gateway`]. `Default` gives the documented values.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Address [`Gateway::bind`] listens on. Default `127.0.0.1:8080` (this machine only).
    pub listen: SocketAddr,
    /// Requests served at once; past it the answer is 429 with `Retry-After` at once
    /// (never a queue). A request holds its slot until its body is sent. Default 64.
    pub max_concurrent_requests: usize,
    /// Open connections; past it new ones wait to be accepted. Default 1,024.
    pub max_connections: usize,
    /// Bytes of a request's line and headers (HTTP/1) or header list (HTTP/2). At least
    /// 8,192. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Headers per request (HTTP/1). Default 64.
    pub max_headers: usize,
    /// Bytes of a URL path (414 past it). Default 4,096.
    pub max_path_bytes: usize,
    /// Segments of a content path after the CID (400 past it). Default 64.
    pub max_path_segments: usize,
    /// Time to read a request's headers. Default 10 s.
    pub header_read_timeout: Duration,
    /// Time from a request to its response headers (504 past it). Default 30 s.
    pub request_timeout: Duration,
    /// A body that the client does not read for this long is cut. Default 30 s.
    pub stall_timeout: Duration,
    /// Longest a response body may take; it is cut past it. Default 1 hour.
    pub max_response_time: Duration,
    /// Bytes of blocks a CAR response reads ahead of the socket (by their stored sizes).
    /// Default 4 MiB.
    pub fetch_budget_bytes: usize,
    /// Distinct blocks a `dups=n` CAR remembers (16 bytes each); a larger DAG's stream is
    /// cut with an error (ask with `dups=y`). Default 1,048,576.
    pub max_dedup_blocks: usize,
    /// Deepest DAG a CAR walks (levels that still have links to follow; a chain of single
    /// links costs one). Default 4,096.
    pub max_dag_depth: usize,
    /// Serve files, directories and blocks deserialized when no format is asked for.
    /// `false` is strict trustless mode: such requests get 400. Default `true`.
    pub deserialized_responses: bool,
    /// How long [`Gateway::serve`] lets responses in flight finish after shutdown starts.
    /// Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_concurrent_requests: 64,
            max_connections: 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_path_bytes: 4096,
            max_path_segments: 64,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            max_response_time: Duration::from_secs(3600),
            fetch_budget_bytes: 4 * 1024 * 1024,
            max_dedup_blocks: 1 << 20,
            max_dag_depth: 4096,
            deserialized_responses: true,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// State shared by every request.
pub(crate) struct Inner {
    pub index: Index,
    pub config: GatewayConfig,
    pub slots: Arc<Semaphore>,
}

/// A read-only trustless gateway over an [`Index`] (any store, read-write or
/// [read-only](seedbank_blobstore::Store::open_read_only)). Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Gateway {
    /// A gateway serving the blocks of `index`'s store.
    pub fn new(index: Index, config: GatewayConfig) -> Gateway {
        let slots = Arc::new(Semaphore::new(config.max_concurrent_requests.max(1)));
        Gateway {
            inner: Arc::new(Inner {
                index,
                config,
                slots,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The routes, for embedding in an application's own server: `GET`/`HEAD /ipfs/…`,
    /// CORS preflights, 405 for other methods, 501 for `/ipns/…`, 404 elsewhere. The
    /// request limit and CORS are included; the connection limits of [`Gateway::serve`]
    /// are not.
    pub fn router(&self) -> Router {
        let ipfs = on(
            axum::routing::MethodFilter::GET.or(axum::routing::MethodFilter::HEAD),
            handler::ipfs,
        );
        let cors = CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::RANGE,
                header::USER_AGENT,
                header::ACCEPT,
                header::IF_NONE_MATCH,
                header::CACHE_CONTROL,
                header::HeaderName::from_static("x-requested-with"),
            ])
            .expose_headers([
                header::CONTENT_LENGTH,
                header::CONTENT_RANGE,
                header::ETAG,
                header::CONTENT_DISPOSITION,
                header::CONTENT_LOCATION,
                response::X_IPFS_PATH,
                response::X_IPFS_ROOTS,
            ]);
        Router::new()
            .route("/ipfs/{*rest}", ipfs)
            .route(
                "/ipfs",
                on(
                    axum::routing::MethodFilter::GET.or(axum::routing::MethodFilter::HEAD),
                    no_cid,
                ),
            )
            .route(
                "/ipfs/",
                on(
                    axum::routing::MethodFilter::GET.or(axum::routing::MethodFilter::HEAD),
                    no_cid,
                ),
            )
            .route(
                "/ipns/{*rest}",
                on(
                    axum::routing::MethodFilter::GET.or(axum::routing::MethodFilter::HEAD),
                    ipns,
                ),
            )
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                self.inner.clone(),
                limit,
            ))
            .layer(cors)
            .with_state(self.inner.clone())
    }

    /// Binds [`GatewayConfig::listen`].
    ///
    /// # Errors
    /// The bind's I/O error.
    pub async fn bind(&self) -> std::io::Result<TcpListener> {
        TcpListener::bind(self.inner.config.listen).await
    }

    /// Serves HTTP/1.1 and HTTP/2 (cleartext) on `listener` until `shutdown` completes,
    /// then stops accepting and lets responses in flight finish for up to
    /// [`GatewayConfig::shutdown_grace`].
    ///
    /// # Errors
    /// None today: accept errors (out of descriptors, …) are logged and retried.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let cfg = &self.inner.config;
        let app = self.router();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .max_buf_size(cfg.max_header_bytes.max(8192))
            .max_headers(cfg.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(u32::try_from(cfg.max_concurrent_requests).unwrap_or(u32::MAX))
            .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("gateway accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(app.clone());
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("gateway connection ended: {e}");
                }
                drop(permit);
            });
        }
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(cfg.shutdown_grace) => {
                tracing::debug!("gateway shutdown grace over; dropping connections");
            }
        }
        Ok(())
    }
}

/// Takes a request slot or answers 429; the slot is released when the body is done.
async fn limit(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let Ok(permit) = inner.slots.clone().try_acquire_owned() else {
        let mut resp = response::error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests at once; retry shortly",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    next.run(req).await.map(|inner| {
        Body::new(body::PermitBody {
            inner,
            permit: Some(permit),
        })
    })
}

async fn no_cid() -> Response {
    response::error(StatusCode::BAD_REQUEST, "no CID: use /ipfs/{cid}")
}

async fn ipns() -> Response {
    response::error(
        StatusCode::NOT_IMPLEMENTED,
        "this gateway serves /ipfs/ only (no IPNS or DNSLink resolution)",
    )
}

async fn not_found() -> Response {
    response::error(
        StatusCode::NOT_FOUND,
        "not found: this gateway serves /ipfs/{cid}",
    )
}

async fn method_not_allowed() -> Response {
    let mut resp = response::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "this gateway is read-only: GET, HEAD and OPTIONS only",
    );
    resp.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    resp
}

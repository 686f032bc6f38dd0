//! `seedbank gateway`: the store as a read-only IPFS Trustless Gateway over HTTP (see
//! `seedbank_gateway`), opened read-only so it runs beside any owner of the database.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use seedbank::blobstore::{Config, Store};
use seedbank::index::{Index, IndexConfig};
use seedbank_gateway::{Gateway, GatewayConfig};

use super::out::outln;

/// Options of `seedbank gateway`.
#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// Address to listen on (TCP). `0.0.0.0:PORT` serves the LAN; port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Requests served at once; past it the answer is 429.
    #[arg(long, default_value_t = 64)]
    max_requests: usize,
    /// Strict trustless mode: only raw blocks and CARs, no file bytes or listings.
    #[arg(long)]
    trustless_only: bool,
}

/// Serves `db` read-only until SIGINT/SIGTERM; prints the URL once listening.
pub async fn run(db: &Path, args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(db, Config::default()).context("cannot open the database")?;
    let result = serve(&store, args).await;
    let closed = store.close().await;
    result?;
    closed?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(store: &Store, args: GatewayArgs) -> anyhow::Result<()> {
    let index = Index::open(store.clone(), IndexConfig::default()).await?;
    let mut config = GatewayConfig::default();
    config.listen = args.listen;
    config.max_concurrent_requests = args.max_requests.max(1);
    config.deserialized_responses = !args.trustless_only;
    let gateway = Gateway::new(index, config);
    let listener = gateway
        .bind()
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    outln!("http://{addr}/")?;
    let stop = async {
        if let Err(e) = super::net::stop_signal().await {
            tracing::warn!("cannot wait for signals: {e}");
            std::future::pending::<()>().await;
        }
    };
    gateway.serve(listener, stop).await?;
    Ok(())
}

//! `seedbank serve` and `seedbank sync`: the store on the network (see `seedbank::net`).

use std::collections::HashSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use seedbank::blobstore::{Config, Store};
use seedbank::discovery::{
    Discovery, DiscoveryConfig, Error as DError, HavesCache, HavesConfig, Peer, Responder,
    ResponderConfig, Scope,
};
use seedbank::index::{Index, IndexConfig};
use seedbank::net::{
    bind_endpoint, Endpoint, EndpointId, NetPeer, Node, NodeConfig, SecretKey, Ticket,
};

use super::out::{self, outln};

/// Most peers one sync uses, given and learned by peer exchange together.
const MAX_SYNC_PEERS: usize = 64;

/// Options of `seedbank serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (UDP). `0.0.0.0:PORT` serves the LAN.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Also write the ticket, alone, to this file (atomically).
    #[arg(long)]
    ticket_file: Option<PathBuf>,
    /// Serve only these endpoint ids (repeatable; default: anyone).
    #[arg(long = "allow", value_name = "ENDPOINT_ID")]
    allow: Vec<EndpointId>,
    /// Tickets of other nodes to hand out when peers ask (peer exchange; repeatable).
    #[arg(long = "known-peer", value_name = "TICKET")]
    known_peers: Vec<Ticket>,
    /// Use iroh's public relays and address lookup (internet; default: offline).
    #[arg(long)]
    internet: bool,
    /// Serve the store's, the responder's and the node's stats in Prometheus text format
    /// over HTTP at this address (e.g. `127.0.0.1:9090`; any path), refreshed every second.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Test only: serve corrupted bytes for every blob.
    #[arg(long, hide = true)]
    lie: bool,
}

/// Options of `seedbank sync`.
#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// A root CID (its DAG) or a scope name.
    scope: String,
    /// A peer's ticket (repeatable; at least one).
    #[arg(long = "peer", value_name = "TICKET", required = true)]
    peers: Vec<Ticket>,
    /// Use iroh's relays and address lookup (internet; default: offline).
    #[arg(long)]
    internet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `<db>.key`: the node's secret key, so its ticket survives restarts.
fn key_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Loads the node key beside the database, creating it (mode 0600) on first use.
fn load_or_create_key(db: &Path) -> anyhow::Result<SecretKey> {
    let path = key_path(db);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .with_context(|| format!("{} is not a 32-byte key", path.display()))?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            write_atomically(&path, &key.to_bytes(), 0o600)?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `data` to a temporary file beside `path`, syncs it, and renames it over `path`.
/// The temporary file is created exclusively (never through a file or link already there)
/// with `mode` from the start, and removed if anything fails.
fn write_atomically(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut write = || -> std::io::Result<()> {
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp); // Ours: created exclusively above.
        anyhow::Error::from(e).context(format!("cannot write {}", path.display()))
    })
}

/// Waits for SIGINT or SIGTERM.
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn open_index(db: &Path) -> anyhow::Result<Index> {
    let store = Store::open(db, Config::default()).context("cannot open the database")?;
    match Index::open(store.clone(), IndexConfig::default()).await {
        Ok(index) => Ok(index),
        Err(e) => {
            let _ = store.close().await;
            Err(e.into())
        }
    }
}

/// Serves the store until SIGINT/SIGTERM, then stops gracefully and closes the store.
pub async fn serve(db: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let key = load_or_create_key(db)?;
    let index = open_index(db).await?;
    let result = serve_index(&index, key, args).await;
    let closed = index.store().close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn serve_index(index: &Index, key: SecretKey, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let haves = HavesCache::new(index.clone(), HavesConfig::default());
    let responder = Responder::new("local", haves.clone(), ResponderConfig::default());
    if let Some(addr) = args.metrics {
        super::metrics::install(addr)?;
    }
    let local: Arc<dyn Peer> = if args.lie {
        Arc::new(seedbank_sim::SimPeer::new(
            "liar",
            seedbank_sim::Behavior::Liar,
            Duration::ZERO,
            Some(responder.clone()),
        ))
    } else {
        Arc::new(responder.clone())
    };
    let config = NodeConfig {
        listen: args.listen,
        secret_key: Some(key),
        internet: args.internet,
        allow: (!args.allow.is_empty()).then(|| args.allow.iter().copied().collect()),
        ..NodeConfig::default()
    };
    let node = Node::spawn(local, config).await?;
    for ticket in args.known_peers {
        node.add_known_peer(ticket);
    }
    let ticket = node.ticket().to_string();
    if let Some(file) = &args.ticket_file {
        write_atomically(file, ticket.as_bytes(), 0o644)?;
    }
    outln!("{ticket}")?;
    std::io::stdout().flush()?;
    let publish = async {
        if args.metrics.is_none() {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            index.store().stats().publish();
            responder.stats().publish();
            haves.stats().publish();
            node.stats().publish();
        }
    };
    let stopped = tokio::select! {
        stopped = stop_signal() => stopped,
        never = publish => never,
    };
    tracing::info!("stopping");
    node.shutdown().await?;
    stopped?;
    Ok(ExitCode::SUCCESS)
}

/// A root CID is a DAG scope; anything else is a scope name.
fn parse_scope(s: &str) -> Scope {
    match seedbank::Cid::try_from(s) {
        Ok(root) => Scope::dag(root),
        Err(_) => Scope::named(s),
    }
}

/// Discovers what SCOPE is missing from the given peers (and those they know) and stores
/// it. Exit 0 when complete, 1 when not, 2 on usage errors.
pub async fn sync(db: &Path, args: SyncArgs) -> anyhow::Result<ExitCode> {
    if args.scope.is_empty() {
        eprintln!("seedbank: SCOPE must not be empty");
        return Ok(ExitCode::from(2));
    }
    let index = open_index(db).await?;
    let result = sync_index(&index, args).await;
    let closed = index.store().close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn sync_index(index: &Index, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let scope = parse_scope(&args.scope);
    let config = NodeConfig {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        internet: args.internet,
        ..NodeConfig::default()
    };
    let endpoint = bind_endpoint(&config).await?;
    let peers = gather_peers(&endpoint, &config, &args.peers).await;
    let haves = HavesCache::new(index.clone(), HavesConfig::default());
    let discovery = Discovery::new(haves, DiscoveryConfig::default());
    let dyn_peers: Vec<Arc<dyn Peer>> = peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect();
    let progress = show_progress(&discovery);
    let result = discovery.discover(&scope, &dyn_peers).await;
    if let Some(bar) = progress {
        bar.abort();
    }
    for p in &peers {
        p.close().await;
    }
    // A dial still pending would hold the close for seconds: bound it.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.close()).await;
    let complete = match result {
        Ok(report) => {
            let complete = match &scope {
                Scope::Dag(root) => report.complete && index.missing(root).await?.is_empty(),
                Scope::Named(_) => report.complete,
            };
            if args.json {
                out::json(&report)?;
            } else {
                outln!("{}", report.to_string().trim_end())?;
            }
            complete
        }
        Err(e @ DError::NotFound { .. }) => {
            eprintln!("seedbank: {e}");
            false
        }
        Err(e) => return Err(e.into()),
    };
    Ok(super::blobs::verdict(complete))
}

/// On a terminal, draws the run's progress on stderr from its events (blobs fetched of
/// those known to be wanted, bytes and rate, peers), until aborted; quiet otherwise.
fn show_progress(discovery: &Discovery) -> Option<tokio::task::JoinHandle<()>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let mut events = discovery.progress();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} blobs {msg}",
    ) {
        bar.set_style(style);
    }
    let started = std::time::Instant::now();
    Some(tokio::spawn(async move {
        let _clear = ClearOnDrop(bar.clone());
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let rate = event.bytes_fetched as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_length(event.wanted.max(event.blobs_fetched));
            bar.set_position(event.blobs_fetched);
            bar.set_message(format!(
                "{} at {}/s, {} peers",
                indicatif::HumanBytes(event.bytes_fetched),
                indicatif::HumanBytes(rate as u64),
                event.peers_active
            ));
            if event.finished {
                return;
            }
        }
    }))
}

/// Clears the progress bar however its task ends (finished, or aborted).
struct ClearOnDrop(indicatif::ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// The given peers plus those they tell about (one peer-exchange round, bounded by time
/// and by [`MAX_SYNC_PEERS`]).
async fn gather_peers(
    endpoint: &Endpoint,
    config: &NodeConfig,
    tickets: &[Ticket],
) -> Vec<Arc<NetPeer>> {
    let mut seen = HashSet::new();
    let mut peers = Vec::new();
    for t in tickets {
        if seen.insert(t.id()) && peers.len() < MAX_SYNC_PEERS {
            peers.push(Arc::new(NetPeer::new(
                endpoint.clone(),
                t.clone(),
                config.peer.clone(),
            )));
        }
    }
    let mut asks = tokio::task::JoinSet::new();
    for p in peers.clone() {
        asks.spawn(async move {
            tokio::time::timeout(Duration::from_secs(2), p.peers())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        });
    }
    let mut learned = Vec::new();
    while let Some(answer) = asks.join_next().await {
        learned.extend(answer.unwrap_or_default());
    }
    for ticket in learned {
        if peers.len() < MAX_SYNC_PEERS && seen.insert(ticket.id()) {
            peers.push(Arc::new(NetPeer::new(
                endpoint.clone(),
                ticket,
                config.peer.clone(),
            )));
        }
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_written_through_an_exclusive_temp_file_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let key = load_or_create_key(&db).unwrap();
        assert_eq!(load_or_create_key(&db).unwrap().to_bytes(), key.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&db))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A file planted at the temp path is refused, left alone, and no key is written.
        let other = dir.path().join("b.db");
        let mut planted = key_path(&other).into_os_string();
        planted.push(format!(".tmp{}", std::process::id()));
        std::fs::write(&planted, b"planted").unwrap();
        assert!(load_or_create_key(&other).is_err());
        assert_eq!(std::fs::read(&planted).unwrap(), b"planted");
        assert!(!key_path(&other).exists());
    }
}

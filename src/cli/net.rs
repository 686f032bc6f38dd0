//! `seedbank serve` and `seedbank sync`: the store on the network (see `seedbank::net`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use seedbank::discovery::{Discovery, DiscoveryConfig, Error as DError, Scope};
use seedbank::net::{EndpointId, NodeConfig, Ticket};
use seedbank::{Node, NodeOptions, ServeConfig, Server, SyncConfig};

use super::out::{self, outln};

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
    /// Serve only the blobs these pins reach and these scopes hold (repeatable; each NAME
    /// is looked up as a pin and as a scope). Known peers then go only to `--allow` ids.
    #[arg(long = "share", value_name = "PIN_OR_SCOPE", num_args = 1..)]
    share: Vec<String>,
    /// Also serve the store as an IPFS Trustless Gateway over HTTP at this address (TCP,
    /// e.g. `127.0.0.1:8080`; port 0 picks one); its URL is printed after the ticket. The
    /// gateway serves the whole store: `--share` does not apply to it.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Test only (builds with the `test-hooks` feature): serve corrupted bytes.
    #[arg(long, hide = true)]
    lie: bool,
}

/// Options of `seedbank sync`.
#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// A root CID (its DAG) or a scope name.
    scope: String,
    /// A peer's ticket (repeatable; at least one `--peer` or `--gateway`).
    #[arg(
        long = "peer",
        value_name = "TICKET",
        required_unless_present = "gateways"
    )]
    peers: Vec<Ticket>,
    /// An IPFS Trustless Gateway to fetch the DAG from too, e.g. `http://127.0.0.1:8080`
    /// or `https://trustless-gateway.link` (repeatable; mixable with `--peer`; SCOPE must
    /// be a root CID). Every block is verified; a gateway that lies or stalls is dropped.
    #[arg(long = "gateway", value_name = "URL")]
    gateways: Vec<seedbank_gateway::client::Url>,
    /// Use iroh's relays and address lookup (internet; default: offline).
    #[arg(long)]
    internet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Stop the run after this long (e.g. `30s`, `5m`): what it stored stays stored, and
    /// the error says how much that was (default: no limit).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Benchmarks only: fetch requests kept in flight per peer (default 2).
    #[arg(long, hide = true, value_name = "N")]
    fetches_in_flight: Option<usize>,
}

/// Waits for SIGINT or SIGTERM (`serve` and `gateway` stop on either).
pub(super) async fn stop_signal() -> std::io::Result<()> {
    stop_signals()?.await
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal sent once the caller announced
/// itself, e.g. printed its ticket, stops it gracefully instead of killing it) and returns
/// the wait for them.
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    Ok(async { tokio::signal::ctrl_c().await })
}

async fn open_node(db: &Path) -> anyhow::Result<Node> {
    Node::open(db, NodeOptions::default())
        .await
        .context("cannot open the database")
}

/// Serves the store until SIGINT/SIGTERM, then stops gracefully and closes the store.
pub async fn serve(db: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let node = open_node(db).await?;
    let result = serve_node(&node, db, args).await;
    let closed = node.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn serve_node(node: &Node, db: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.metrics {
        super::metrics::install(addr)?;
    }
    warn_exposure(&args)?;
    // Write commands in other processes reach this node here (see `write`).
    let control = super::write::listen(node, db)?;
    let result = serve_with_control(node, db, args).await;
    super::write::stop_listening(control).await;
    result
}

/// Refuses `--share` with a gateway others can reach (it would serve everything), and
/// warns on stderr when the node serves every blob to anyone who reaches it.
fn warn_exposure(args: &ServeArgs) -> anyhow::Result<()> {
    let public = |addr: &SocketAddr| !addr.ip().is_loopback();
    if let Some(http) = args.http.filter(|a| public(a) && !args.share.is_empty()) {
        anyhow::bail!(
            "--http {http} would serve every blob to the network: the gateway does not obey \
             --share (bind it to 127.0.0.1, or drop --share)"
        );
    }
    if args.share.is_empty() && args.allow.is_empty() && (public(&args.listen) || args.internet) {
        let at = if args.internet {
            "the internet (--internet)".to_string()
        } else {
            args.listen.to_string()
        };
        eprintln!(
            "seedbank: warning: serving every blob and scope of this store to anyone who reaches {at}; \
             limit it with --share PIN_OR_SCOPE or --allow ENDPOINT_ID"
        );
    }
    if let Some(http) = args.http.filter(public) {
        eprintln!("seedbank: warning: the HTTP gateway on {http} serves every blob to anyone who reaches it");
    }
    Ok(())
}

async fn serve_with_control(node: &Node, db: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = ServeConfig {
        net: NodeConfig {
            listen: args.listen,
            internet: args.internet,
            allow: (!args.allow.is_empty()).then(|| args.allow.iter().copied().collect()),
            ..NodeConfig::default()
        },
        key_file: Some(Node::key_file(db)),
        known_peers: args.known_peers,
        ticket_file: args.ticket_file,
        share: args.share,
    };
    let stop = stop_signals()?;
    let server = serve_maybe_lying(node, config, args.lie).await?;
    let gateway = match args.http {
        Some(addr) => Some(spawn_gateway(node, addr).await?),
        None => None,
    };
    outln!("{}", server.ticket())?;
    if let Some((url, _, _)) = &gateway {
        outln!("{url}")?;
    }
    std::io::stdout().flush()?;
    let publish = async {
        if args.metrics.is_none() {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            node.store().stats().publish();
            node.haves().stats().publish();
            server.responder().stats().publish();
            server.stats().publish();
        }
    };
    let stopped = tokio::select! {
        stopped = stop => stopped,
        never = publish => never,
    };
    tracing::info!("stopping");
    if let Some((_, stop, task)) = gateway {
        let _ = stop.send(());
        if let Ok(Err(e)) = task.await {
            tracing::warn!("gateway: {e}");
        }
    }
    server.shutdown().await?;
    stopped?;
    Ok(ExitCode::SUCCESS)
}

/// The gateway serving over HTTP at `addr`, inside this node (its store, its runtime):
/// its URL, its stop and its task.
async fn spawn_gateway(
    node: &Node,
    addr: SocketAddr,
) -> anyhow::Result<(
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let mut config = seedbank_gateway::GatewayConfig::default();
    config.listen = addr;
    let gateway = seedbank_gateway::Gateway::new(node.index().clone(), config);
    let listener = gateway
        .bind()
        .await
        .with_context(|| format!("cannot listen on {addr} (--http)"))?;
    let url = format!(
        "http://{}/",
        listener
            .local_addr()
            .context("cannot read the gateway's address")?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok((url, stop, task))
}

/// `serve --lie` (hidden, for the CLI's own tests): serves corrupted bytes. The liar is a
/// hook of builds with the `test-hooks` feature (tests turn it on); shipped builds refuse.
async fn serve_maybe_lying(node: &Node, config: ServeConfig, lie: bool) -> anyhow::Result<Server> {
    if !lie {
        return Ok(node.serve(config).await?);
    }
    let Some(liar) = node.liar() else {
        anyhow::bail!("--lie is a test hook: this build does not have it (feature test-hooks)");
    };
    Ok(node
        .serve_peer(liar, node.responder("local"), config)
        .await?)
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
    if !args.gateways.is_empty() && !matches!(parse_scope(&args.scope), Scope::Dag(_)) {
        eprintln!("seedbank: --gateway serves DAGs by CID: SCOPE must be a root CID");
        return Ok(ExitCode::from(2));
    }
    let mut discovery = DiscoveryConfig {
        run_timeout: args.timeout,
        ..DiscoveryConfig::default()
    };
    if let Some(n) = args.fetches_in_flight {
        discovery.fetches_in_flight = n;
    }
    let options = NodeOptions {
        discovery,
        ..NodeOptions::default()
    };
    let node = Node::open(db, options)
        .await
        .context("cannot open the database")?;
    let result = sync_node(&node, args).await;
    let closed = node.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn sync_node(node: &Node, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let scope = parse_scope(&args.scope);
    let mut config = SyncConfig::default();
    config.net.internet = args.internet;
    config.gateways = args.gateways;
    let progress = show_progress(node.discovery());
    let result = node.sync(&scope, &args.peers, &config).await;
    if let Some(bar) = progress {
        bar.abort();
    }
    let complete = match result {
        Ok(report) => {
            if args.json {
                out::json(&report)?;
            } else {
                outln!("{}", report.to_string().trim_end())?;
            }
            report.complete
        }
        Err(seedbank::Error::Discovery(e @ DError::NotFound { .. })) => {
            eprintln!("seedbank: {e}");
            false
        }
        Err(e) => return Err(e.into()),
    };
    Ok(super::out::verdict(complete))
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

//! `seedbank sim --processes N`: discovery over real QUIC from a fresh node against N
//! `seedbank serve` processes on 127.0.0.1 holding overlapping parts of one DAG (some
//! dead, one serving corrupted bytes), measured against importing the same DAG locally
//! from a CAR file, then synced a second time with nothing missing.

mod figures;
mod servers;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seedbank::blobstore::Config;
use seedbank::discovery::{Discovery, DiscoveryConfig, Peer, Report, Scope};
use seedbank::index::car::{self, CarWriter, ImportOptions};
use seedbank::net::{bind_endpoint, NetPeer, NodeConfig, PeerStats, Ticket};
use seedbank_sim::{log_uniform, SimDag, SimNode};

use self::figures::{ImportFigures, RunFigures, SyncFigures};
use self::servers::{cpu_seconds, wait_ticket, Server};
use super::out::{self, outln};

/// The named scope the serving processes hold their blobs in.
const SCOPE: &str = "sim";

/// What the multi-process simulation runs.
pub struct ProcessSim {
    /// Serving processes.
    pub processes: usize,
    /// Seed of the DAG and of who holds what.
    pub seed: u64,
    /// Share of processes killed before the sync (their tickets stay on the list).
    pub failing: f64,
    /// Processes serving corrupted bytes.
    pub liars: usize,
    /// Blocks in the DAG (about: branches × leaves + branches + 1).
    pub blocks: usize,
    /// Leaf sizes in bytes, drawn log-uniformly from this range.
    pub sizes: (usize, usize),
    /// Every process holds the whole DAG (default: each leaf on one honest process, and
    /// on each other one with p = 0.3).
    pub full_replicas: bool,
    /// Repetitions, each with a fresh client and a fresh baseline store.
    pub repeat: usize,
    /// Print JSON.
    pub json: bool,
}

/// The generated DAG: `branches ≈ √blocks`, leaves spread evenly under them.
fn generate(sim: &ProcessSim, rng: &mut StdRng) -> SimDag {
    let branches = ((sim.blocks as f64).sqrt().round() as usize).max(1);
    let leaves = ((sim.blocks.saturating_sub(branches + 1) as f64 / branches as f64).round()
        as usize)
        .max(1);
    let (min, max) = sim.sizes;
    SimDag::generate_sized(
        rng,
        "target",
        branches,
        leaves,
        |r| log_uniform(r, min, max),
        None,
    )
}

/// Writes the DAG as a CARv1 (the baseline's input).
async fn write_car(dag: &SimDag, path: &Path) -> anyhow::Result<()> {
    let file = tokio::fs::File::create(path).await?;
    let mut writer = CarWriter::new(tokio::io::BufWriter::new(file), &[dag.root_cid()]).await?;
    for blob in dag.blocks() {
        writer.write_block(blob.cid(), blob.data()).await?;
    }
    let mut out = writer.finish().await?;
    tokio::io::AsyncWriteExt::flush(&mut out).await?;
    Ok(())
}

/// The baseline: a fresh store (default configuration, as `seedbank import`) imports the CAR.
async fn import_baseline(car_path: &Path, db: &Path) -> anyhow::Result<ImportFigures> {
    let node = SimNode::open_with(db, Config::default()).await?;
    let cpu_before = cpu_seconds("self");
    let start = Instant::now();
    let file = tokio::fs::File::open(car_path).await?;
    // The defaults of `seedbank import`.
    let opts = ImportOptions::default();
    car::import(&node.index, tokio::io::BufReader::new(file), opts).await?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self").zip(cpu_before).map(|(a, b)| a - b);
    node.store().close().await?;
    Ok(ImportFigures {
        seconds,
        cpu_seconds: cpu,
    })
}

/// The live servers' CPU seconds together.
fn servers_cpu(servers: &[Server]) -> Option<f64> {
    servers.iter().map(Server::cpu_seconds).sum()
}

async fn traffic(peers: &[Arc<NetPeer>]) -> PeerStats {
    let mut total = PeerStats::default();
    for p in peers {
        let s = p.stats().await;
        total.connects += s.connects;
        total.connect_time += s.connect_time;
        total.udp_bytes_sent += s.udp_bytes_sent;
        total.udp_bytes_received += s.udp_bytes_received;
    }
    total
}

/// One `discover` of `scope`, with the traffic and CPU it cost.
async fn sync_once(
    discovery: &Discovery,
    scope: &Scope,
    peers: &[Arc<NetPeer>],
    servers: &[Server],
) -> anyhow::Result<(Report, SyncFigures)> {
    let dyn_peers: Vec<Arc<dyn Peer>> = peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect();
    let (before, cpu_before, servers_before) = (
        traffic(peers).await,
        cpu_seconds("self"),
        servers_cpu(servers),
    );
    let start = Instant::now();
    let report = discovery
        .discover(scope, &dyn_peers)
        .await
        .context("discovery failed")?;
    let seconds = start.elapsed().as_secs_f64();
    let after = traffic(peers).await;
    let figures = SyncFigures {
        seconds,
        blobs: report.blobs_fetched,
        payload_bytes: report.bytes_fetched,
        udp_bytes_sent: after.udp_bytes_sent - before.udp_bytes_sent,
        udp_bytes_received: after.udp_bytes_received - before.udp_bytes_received,
        reconcile_bytes: report.reconcile_bytes,
        rounds: report.rounds,
        fetches: report.fetches,
        peers_contacted: report.peers_contacted,
        client_cpu_seconds: cpu_seconds("self").zip(cpu_before).map(|(a, b)| a - b),
        servers_cpu_seconds: servers_cpu(servers).zip(servers_before).map(|(a, b)| a - b),
        connects: after.connects - before.connects,
        connect_seconds: (after.connect_time - before.connect_time).as_secs_f64(),
    };
    Ok((report, figures))
}

/// One repetition: the baseline import, then a fresh client syncs twice.
async fn run_once(
    dir: &Path,
    r: usize,
    dag: &SimDag,
    tickets: &[Ticket],
    servers: &[Server],
) -> anyhow::Result<(Report, usize, RunFigures)> {
    let import = import_baseline(&dir.join("dag.car"), &dir.join(format!("import{r}.db"))).await?;
    let client = SimNode::open_with(&dir.join(format!("client{r}.db")), Config::default()).await?;
    let config = NodeConfig::default();
    let endpoint = bind_endpoint(&config).await?;
    let peers: Vec<Arc<NetPeer>> = tickets
        .iter()
        .map(|t| {
            Arc::new(NetPeer::new(
                endpoint.clone(),
                t.clone(),
                config.peer.clone(),
            ))
        })
        .collect();
    let discovery = client.discovery(DiscoveryConfig::default());
    let dag_scope = Scope::dag(dag.root_cid());
    let named = Scope::named(SCOPE);
    let first = sync_once(&discovery, &dag_scope, &peers, servers).await;
    // Again with nothing missing: the DAG, then the named scope the servers hold it in
    // (its first sync only adds memberships to blobs stored already).
    let again = async {
        let dag = sync_once(&discovery, &dag_scope, &peers, servers).await?.1;
        sync_once(&discovery, &named, &peers, servers).await?;
        let named = sync_once(&discovery, &named, &peers, servers).await?.1;
        anyhow::Ok((dag, named))
    };
    let again = match &first {
        Ok(_) => Some(again.await),
        Err(_) => None,
    };
    for p in &peers {
        p.close().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.close()).await;
    let missing = client.index.missing(&dag.root_cid()).await?.len();
    client.store().close().await?;
    let (report, first) = first?;
    let (again_dag, again_named) = again.expect("ran after a first sync that succeeded")?;
    Ok((
        report,
        missing,
        RunFigures {
            import,
            first,
            again_dag,
            again_named,
        },
    ))
}

/// Runs the simulation; exit 0 when every sync completed.
pub async fn run(mut sim: ProcessSim) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(sim.processes >= 1, "--processes must be at least 1");
    anyhow::ensure!(sim.repeat >= 1, "--repeat must be at least 1");
    // Lying processes run `serve --lie`, a test hook shipped builds do not contain: they
    // run honest ones instead, and say so (the report counts them as honest).
    if sim.liars > 0 && !seedbank::TEST_HOOKS {
        eprintln!(
            "seedbank: warning: no lying processes in this build (they need the test-hooks \
             feature: cargo build --release --features test-hooks); --liars {} ignored",
            sim.liars
        );
        sim.liars = 0;
    }
    anyhow::ensure!(
        sim.sizes.0 <= sim.sizes.1,
        "--sizes MIN-MAX needs MIN ≤ MAX"
    );
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(sim.seed);
    let dag = generate(&sim, &mut rng);
    let dag_bytes: u64 = dag.blocks().iter().map(|b| b.data().len() as u64).sum();
    write_car(&dag, &dir.path().join("dag.car")).await?;
    let dead = ((sim.processes as f64 * sim.failing).round() as usize).min(sim.processes - 1);
    let liars = sim.liars.min(sim.processes - dead - 1);
    let honest = sim.processes - dead - liars;
    let leaves_per_branch = dag.leaves.first().map_or(1, Vec::len);
    let mut started = Vec::new();
    for i in 0..sim.processes {
        let db = dir.path().join(format!("serve{i}.db"));
        let node = SimNode::open(&db).await?;
        // Every leaf on one honest process at least, and on each other one with p = 0.3.
        let blobs = dag.subset(|b, l| {
            sim.full_replicas
                || (i < honest && (b * leaves_per_branch + l) % honest == i)
                || rng.gen_bool(0.3)
        });
        node.put(blobs, Some(SCOPE)).await?;
        node.store().close().await?;
        let ticket_file = dir.path().join(format!("serve{i}.ticket"));
        let lie = i >= honest && i < honest + liars;
        started.push((Server::spawn(&db, &ticket_file, lie)?, ticket_file));
    }
    let mut tickets = Vec::new();
    let mut servers = Vec::new();
    for (i, (server, ticket_file)) in started.into_iter().enumerate() {
        tickets.push(wait_ticket(&ticket_file)?);
        if i >= honest + liars {
            server.stop(); // Dead: its ticket stays on the list.
        } else {
            servers.push(server);
        }
    }

    let mut runs = Vec::new();
    let mut outcome = Ok(());
    let mut first_report = None;
    let mut all_complete = true;
    for r in 0..sim.repeat {
        match run_once(dir.path(), r, &dag, &tickets, &servers).await {
            Ok((report, missing, figures)) => {
                all_complete &= report.complete && missing == 0;
                runs.push(figures);
                first_report.get_or_insert((report, missing));
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    for s in servers {
        s.stop();
    }
    outcome?;
    let (report, missing) = first_report.expect("at least one run");
    if sim.json {
        out::json(&serde_json::json!({
            "report": report,
            "processes": { "honest": honest, "liars": liars, "dead": dead },
            "dag_blocks": dag.len(),
            "dag_bytes": dag_bytes,
            "missing_after": missing,
            "runs": runs,
        }))?;
    } else {
        outln!("{}", report.to_string().trim_end())?;
        outln!(
            "processes       {} ({honest} honest, {liars} lying, {dead} dead; {} replicas); DAG {} blocks, {:.1} MB (leaves {}–{} B), {missing} missing after",
            sim.processes,
            if sim.full_replicas { "full" } else { "partial" },
            dag.len(),
            dag_bytes as f64 / 1e6,
            sim.sizes.0,
            sim.sizes.1,
        )?;
        for line in figures::render(&runs, dag_bytes) {
            outln!("{line}")?;
        }
    }
    Ok(super::out::verdict(all_complete))
}

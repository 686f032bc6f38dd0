//! `seedbank sim --processes N`: discovery over real QUIC from a fresh node against N
//! `seedbank serve` processes on 127.0.0.1 holding overlapping parts of one DAG (some
//! dead, one serving corrupted bytes).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seedbank::discovery::{Discovery, DiscoveryConfig, HavesCache, HavesConfig, Peer, Scope};
use seedbank::net::{bind_endpoint, NetPeer, NodeConfig, Ticket};
use seedbank_sim::{SimDag, SimNode};

use super::out::{self, outln};

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
    /// Print JSON.
    pub json: bool,
}

/// CPU seconds (user + system) of a process, from `/proc` (None elsewhere).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn spawn_serve(db: &Path, ticket: &Path, lie: bool) -> anyhow::Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--db")
        .arg(db)
        .arg("serve")
        .arg("--ticket-file")
        .arg(ticket)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if lie {
        cmd.arg("--lie");
    }
    Ok(cmd.spawn()?)
}

fn wait_ticket(path: &Path) -> anyhow::Result<Ticket> {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok(text.parse()?);
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let start = Instant::now();
    while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the simulation; exit 0 when the sync completed.
pub async fn run(sim: ProcessSim) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(sim.processes >= 1, "--processes must be at least 1");
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(sim.seed);
    let dag = SimDag::generate(&mut rng, "target", 20, 50, 1024, None);
    let dead = ((sim.processes as f64 * sim.failing).round() as usize).min(sim.processes - 1);
    let liars = sim.liars.min(sim.processes - dead - 1);
    let honest = sim.processes - dead - liars;
    let mut children = Vec::new();
    let mut tickets = Vec::new();
    for i in 0..sim.processes {
        let db: PathBuf = dir.path().join(format!("serve{i}.db"));
        let node = SimNode::open(&db).await?;
        // Every leaf on one honest process at least, and on each other one with p = 0.3.
        let blobs =
            dag.subset(|b, l| (i < honest && (b * 50 + l) % honest == i) || rng.gen_bool(0.3));
        node.put(blobs, None).await?;
        node.store().close().await?;
        let ticket_file = dir.path().join(format!("serve{i}.ticket"));
        let lie = i >= honest && i < honest + liars;
        children.push(spawn_serve(&db, &ticket_file, lie)?);
        tickets.push(ticket_file);
    }
    let tickets: Vec<Ticket> = tickets
        .iter()
        .map(|t| wait_ticket(t))
        .collect::<Result<_, _>>()?;
    let children: Vec<Child> = children
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| {
            if i >= honest + liars {
                stop(c);
                None
            } else {
                Some(c)
            }
        })
        .collect();

    let client = SimNode::open(&dir.path().join("client.db")).await?;
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
    let dyn_peers: Vec<Arc<dyn Peer>> = peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect();
    let discovery = Discovery::new(
        HavesCache::new(client.index.clone(), HavesConfig::default()),
        DiscoveryConfig::default(),
    );
    let cpu_before = cpu_seconds("self");
    let start = Instant::now();
    let result = discovery
        .discover(&Scope::dag(dag.root_cid()), &dyn_peers)
        .await;
    let wall = start.elapsed();
    let cpu = cpu_seconds("self").zip(cpu_before).map(|(a, b)| a - b);
    let servers_cpu: f64 = children
        .iter()
        .filter_map(|c| cpu_seconds(&c.id().to_string()))
        .sum();
    let (mut sent, mut received) = (0, 0);
    for p in &peers {
        let s = p.stats().await;
        sent += s.udp_bytes_sent;
        received += s.udp_bytes_received;
        p.close().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.close()).await;
    let missing = client.index.missing(&dag.root_cid()).await?.len();
    client.store().close().await?;
    for c in children {
        stop(c);
    }
    let report = result.context("discovery failed")?;
    let payload = report.bytes_fetched.max(1);
    if sim.json {
        out::json(&serde_json::json!({
            "report": report,
            "processes": { "honest": honest, "liars": liars, "dead": dead },
            "dag_blocks": dag.len(),
            "missing_after": missing,
            "wall_ms": wall.as_millis() as u64,
            "udp_bytes_sent": sent,
            "udp_bytes_received": received,
            "client_cpu_s": cpu,
            "servers_cpu_s": servers_cpu,
        }))?;
    } else {
        outln!("{}", report.to_string().trim_end())?;
        outln!(
            "processes       {} ({honest} honest, {liars} lying, {dead} dead); DAG {} blocks, {missing} missing after",
            sim.processes,
            dag.len()
        )?;
        outln!("wall time       {:.3} s", wall.as_secs_f64())?;
        outln!(
            "on the wire     {sent} B sent, {received} B received (UDP); payload {} B, overhead {:.1}%",
            report.bytes_fetched,
            (sent + received) as f64 * 100.0 / payload as f64 - 100.0
        )?;
        outln!(
            "cpu             client {}, servers {servers_cpu:.2} s",
            cpu.map_or("n/a".to_string(), |c| format!("{c:.2} s"))
        )?;
    }
    Ok(super::blobs::verdict(report.complete && missing == 0))
}

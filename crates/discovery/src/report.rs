//! What one discovery run did, for callers, logs and the simulation.

use std::fmt;
use std::time::Duration;

use crate::scope::Scope;

/// How a peer session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Reconciled and fetched everything it could offer (or stopped because the scope
    /// completed after it started).
    Done,
    /// Cancelled when the scope completed, before it finished.
    Cancelled,
    /// Did not answer within the round timeout or its time budget.
    TimedOut,
    /// Refused with [`Error::Busy`](crate::Error::Busy).
    Busy,
    /// Sent bytes that did not match their CID, or broke the protocol; dropped for good.
    Liar(String),
    /// Failed otherwise (transport error, ...).
    Failed(String),
}

impl fmt::Display for SessionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionOutcome::Done => f.write_str("done"),
            SessionOutcome::Cancelled => f.write_str("cancelled"),
            SessionOutcome::TimedOut => f.write_str("timed out"),
            SessionOutcome::Busy => f.write_str("busy"),
            SessionOutcome::Liar(why) => write!(f, "liar: {why}"),
            SessionOutcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl serde::Serialize for SessionOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One peer session of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionReport {
    /// The peer's id.
    pub peer: String,
    /// How the session ended.
    pub outcome: SessionOutcome,
    /// Reconciliation round trips.
    pub rounds: u64,
    /// Fetch requests.
    pub fetches: u64,
    /// Blobs fetched from this peer and stored.
    pub blobs: u64,
    /// Ids the peer had that the local snapshot lacked.
    pub needed: u64,
    /// Bytes sent to the peer (encoded messages, requested CIDs).
    pub bytes_sent: u64,
    /// Bytes received from the peer (encoded messages, CIDs and blob bytes).
    pub bytes_received: u64,
    /// Bytes of reconciliation messages, both directions.
    pub reconcile_bytes: u64,
    /// Mean round trip of its calls.
    #[serde(serialize_with = "millis_opt")]
    pub latency: Option<Duration>,
}

/// What one discovery run did. Every caller that joined the run gets a copy.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The run's number in its [`Discovery`](crate::Discovery) (callers that shared a run
    /// see the same number).
    pub run: u64,
    /// The scope looked for.
    pub scope: Scope,
    /// True when the scope is complete: for a DAG, nothing is missing under the root; for a
    /// named scope, a peer's reconciliation left nothing to fetch.
    pub complete: bool,
    /// Distinct peers contacted (at most `fanout`).
    pub peers_contacted: u64,
    /// Sessions that failed, timed out or were refused busy.
    pub peers_failed: u64,
    /// Peers caught lying.
    pub liars: u64,
    /// Sessions that timed out.
    pub timeouts: u64,
    /// Sessions refused busy.
    pub busy: u64,
    /// Reconciliation round trips, all peers together.
    pub rounds: u64,
    /// Fetch requests, all peers together.
    pub fetches: u64,
    /// Bytes sent, all peers together.
    pub bytes_sent: u64,
    /// Bytes received, all peers together.
    pub bytes_received: u64,
    /// Bytes of reconciliation messages, both directions, all peers together.
    pub reconcile_bytes: u64,
    /// Blobs fetched, verified and stored.
    pub blobs_fetched: u64,
    /// Bytes of those blobs.
    pub bytes_fetched: u64,
    /// Blobs received for a CID already fetched in this run (0 by construction).
    pub duplicates: u64,
    /// Named scopes: blobs stored already that joined the scope (no fetch needed).
    pub memberships_added: u64,
    /// Blobs whose bytes were stored here under another codec: given their row from the
    /// local bytes instead of being fetched (reconcile by content).
    pub adopted: u64,
    /// Local blobs in the scope's snapshot at the start of the run.
    pub local_blobs: u64,
    /// Haves snapshots the node's cache built during the run (1 for the run's own
    /// snapshot unless it was cached; builds for responders sharing the cache count too).
    pub haves_builds: u64,
    /// Time from the run's start to its end (tokio's clock).
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
    /// One entry per session, in the order they started. A DAG run over partial replicas
    /// may sync a peer again in a later pass (while passes make progress), so a peer can
    /// have more than one.
    pub sessions: Vec<SessionReport>,
}

impl Report {
    /// Messages sent to peers: reconciliation rounds plus fetch requests.
    pub fn messages(&self) -> u64 {
        self.rounds + self.fetches
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn millis_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

/// A two-column summary, then one line per session.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: [(&str, String); 16] = [
            ("scope", self.scope.to_string()),
            ("complete", self.complete.to_string()),
            ("peers contacted", self.peers_contacted.to_string()),
            ("peers failed", self.peers_failed.to_string()),
            ("liars", self.liars.to_string()),
            ("rounds", self.rounds.to_string()),
            ("fetches", self.fetches.to_string()),
            ("bytes sent", self.bytes_sent.to_string()),
            ("bytes received", self.bytes_received.to_string()),
            ("reconcile bytes", self.reconcile_bytes.to_string()),
            ("blobs fetched", self.blobs_fetched.to_string()),
            ("bytes fetched", self.bytes_fetched.to_string()),
            ("duplicates", self.duplicates.to_string()),
            ("local blobs", self.local_blobs.to_string()),
            ("haves builds", self.haves_builds.to_string()),
            (
                "elapsed",
                format!("{:.1} ms", self.elapsed.as_secs_f64() * 1000.0),
            ),
        ];
        for (name, value) in rows {
            writeln!(f, "{name:<16} {value}")?;
        }
        writeln!(
            f,
            "\n{:<12} {:>6} {:>7} {:>6} {:>10} {:>10} {:>9}  outcome",
            "peer", "rounds", "fetches", "blobs", "sent", "received", "rtt ms"
        )?;
        for s in &self.sessions {
            let rtt = s
                .latency
                .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "{:<12} {:>6} {:>7} {:>6} {:>10} {:>10} {:>9}  {}",
                s.peer,
                s.rounds,
                s.fetches,
                s.blobs,
                s.bytes_sent,
                s.bytes_received,
                rtt,
                s.outcome
            )?;
        }
        Ok(())
    }
}

//! Discovery configuration.

use std::time::Duration;

/// How a [`Discovery`](crate::Discovery) contacts peers. Start from
/// [`DiscoveryConfig::default`] and change fields.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Most peers one run contacts, failed ones included (default 8).
    pub fanout: usize,
    /// Most peer sessions running at once (default 4).
    pub concurrency: usize,
    /// Longest wait for one answer (a reconciliation round or a fetch; default 5 s).
    pub round_timeout: Duration,
    /// Most time one peer may take to complete reconciliation, all rounds together
    /// (default 30 s). Each fetch is bounded by `round_timeout` alone, so a peer that keeps
    /// delivering is never cut off; time spent storing what it sent never counts.
    pub peer_timeout: Duration,
    /// How long "none of these peers has it" is remembered (default 30 s; zero disables
    /// the cache). A call offering a peer the remembered run was not offered is not cached.
    pub negative_ttl: Duration,
    /// Most scopes in the negative cache (default 10,000).
    pub negative_capacity: usize,
    /// CIDs per fetch request (default 128). Each answer is verified, then stored as one
    /// `put_many` through the lane.
    pub fetch_batch: usize,
    /// Negentropy frame size limit in bytes (0 = unlimited, else at least 4096; default
    /// 256 KiB).
    pub frame_limit: u64,
    /// Most ids one request asks a peer to resolve to CIDs (default 16,384, what a default
    /// [`Responder`](crate::Responder) accepts; 512 KiB of ids).
    pub max_want: usize,
    /// Most reconciliation round trips with one peer before the session is abandoned as
    /// failed (default 256: a first sync of a million-member named scope needs about 62).
    pub max_rounds: usize,
    /// Most ids one peer may claim to have in one session (default 2,000,000, the haves
    /// cache's default size). A peer claiming more is dropped as over budget.
    pub max_peer_ids: usize,
    /// Most blobs one run stores from peers, all sessions together (default 2,000,000). A
    /// peer whose answer would pass it is dropped as over budget, and the answer not stored.
    pub max_run_blobs: u64,
    /// Most blob bytes one run stores from peers (default 16 GiB), as `max_run_blobs`.
    pub max_run_bytes: u64,
    /// Latency assumed for a peer never measured, when ranking (default 200 ms).
    pub assumed_latency: Duration,
    /// Named scopes: peers whose reconciliation must leave nothing to fetch before the
    /// scope counts as complete (default 1).
    pub named_quorum: usize,
    /// Source name of discovery's writes on the lane (default `"discovery"`).
    pub source: String,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            fanout: 8,
            concurrency: 4,
            round_timeout: Duration::from_secs(5),
            peer_timeout: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(30),
            negative_capacity: 10_000,
            fetch_batch: 128,
            frame_limit: 256 * 1024,
            max_want: 16_384,
            max_rounds: 256,
            max_peer_ids: 2_000_000,
            max_run_blobs: 2_000_000,
            max_run_bytes: 16 << 30,
            assumed_latency: Duration::from_millis(200),
            named_quorum: 1,
            source: "discovery".to_string(),
        }
    }
}

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
    /// Fetch requests one session keeps in flight to its peer (default 2, at least 1): the
    /// next answer travels while one is verified and another stored. A session holds up to
    /// this many answers plus the one being stored (each at most the peer's answer limit,
    /// 16 MiB for a seedbank responder).
    pub fetches_in_flight: usize,
    /// Negentropy frame size limit in bytes (default 256 KiB), within
    /// [`MIN_FRAME_LIMIT`](DiscoveryConfig::MIN_FRAME_LIMIT)..=
    /// [`MAX_FRAME_LIMIT`](DiscoveryConfig::MAX_FRAME_LIMIT). 0 (negentropy's "unlimited")
    /// is refused: it would let messages outgrow what peers accept on the wire. A run with
    /// a value out of range fails with [`Error::Config`](crate::Error::Config).
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
    /// Named scopes: whether a blob stored here (or its bytes, under another codec) joins
    /// the scope because a peer *names* it as a member, without sending it (default
    /// `false`). By default a run makes a blob a member only when a peer sent its bytes in
    /// that run, so a peer that merely knows a hash cannot put a local (private) blob into
    /// a scope, where a scope-based `ServePolicy` would then serve it to others. The price:
    /// a member stored here outside the scope is fetched again. Set it to `true` only when
    /// every peer is trusted with the scope's membership.
    pub trust_named_members: bool,
    /// Most wants one run holds open at once: blocks known to be needed and not fetched
    /// yet, claimed ones included (default 1,000,000). Every link of every fetched DAG
    /// block becomes a want, so this is what bounds the memory a link-dense document can
    /// make a run take: a want costs about 250 bytes (its CID, id, state and index
    /// entries), about 250 MB at the default. A run that would pass it stops with
    /// [`Error::TooManyWants`](crate::Error::TooManyWants), whose report says what was
    /// stored. (Wants already fetched are bounded by `max_run_blobs`.) The default matches
    /// the index's default `reachable_limit`, past which DAG walks fail anyway; a named
    /// scope with more members missing than this at once needs a larger value.
    pub max_open_wants: usize,
    /// Longest time one run may take, from its start (default `None`: no limit beyond
    /// the per-peer budgets). Past it the run's sessions are cancelled and it ends with
    /// [`Error::RunTimedOut`](crate::Error::RunTimedOut), whose report says what was stored.
    pub run_timeout: Option<Duration>,
    /// Source name of discovery's writes on the lane (default `"discovery"`).
    pub source: String,
}

impl DiscoveryConfig {
    /// Smallest `frame_limit` (negentropy's own minimum).
    pub const MIN_FRAME_LIMIT: u64 = 4096;
    /// Largest `frame_limit`: a reconciliation message of this size plus its ids (or CIDs)
    /// still fits the wire caps of `seedbank-net` (2 MiB a request, 4 MiB an answer).
    pub const MAX_FRAME_LIMIT: u64 = 1 << 20;

    /// Checks the values a run relies on.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the first field out of range:
    /// `frame_limit` outside `MIN_FRAME_LIMIT..=MAX_FRAME_LIMIT` (0 included),
    /// `max_open_wants`, `fetch_batch` or `fetches_in_flight` of 0.
    pub fn validate(&self) -> crate::Result<()> {
        check_frame_limit(self.frame_limit)?;
        if self.max_open_wants == 0 {
            return Err(crate::Error::config("max_open_wants", "must be at least 1"));
        }
        if self.fetch_batch == 0 {
            return Err(crate::Error::config("fetch_batch", "must be at least 1"));
        }
        if self.fetches_in_flight == 0 {
            return Err(crate::Error::config(
                "fetches_in_flight",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `frame_limit` within `MIN_FRAME_LIMIT..=MAX_FRAME_LIMIT`, for the discovery and the
/// responder configurations alike.
pub(crate) fn check_frame_limit(frame_limit: u64) -> crate::Result<()> {
    let range = DiscoveryConfig::MIN_FRAME_LIMIT..=DiscoveryConfig::MAX_FRAME_LIMIT;
    if range.contains(&frame_limit) {
        return Ok(());
    }
    let why = if frame_limit == 0 {
        "0 would lift the limit on reconciliation messages, and with it the wire caps".to_string()
    } else {
        format!(
            "{frame_limit} is outside {}..={}",
            range.start(),
            range.end()
        )
    };
    Err(crate::Error::config("frame_limit", why))
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
            fetches_in_flight: 2,
            frame_limit: 256 * 1024,
            max_want: 16_384,
            max_rounds: 256,
            max_peer_ids: 2_000_000,
            max_run_blobs: 2_000_000,
            max_run_bytes: 16 << 30,
            assumed_latency: Duration::from_millis(200),
            named_quorum: 1,
            trust_named_members: false,
            max_open_wants: 1_000_000,
            run_timeout: None,
            source: "discovery".to_string(),
        }
    }
}

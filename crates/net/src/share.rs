//! [`SharePolicy`]: serve only what named pins reach and what named scopes hold
//! (`seedbank serve --share NAME...`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cid::Cid;
use iroh::EndpointId;
use seedbank_discovery::Scope;
use seedbank_index::{Error as IndexError, Index, PinTarget};

use crate::policy::ServePolicy;

/// Serves only the blobs reachable from the named pins and the members of the named scopes
/// (and what they reach), to every remote; nothing else is served, by CID or by scope.
///
/// Each name is looked up as a pin (a root pin shares its root's DAG; a scope pin shares
/// that scope) **and** as a scope name (its members and what they reach). A `dag:` scope is
/// served when its root is shared; a named scope when it is named, or pinned by a named
/// pin. The shared set is computed from the index and cached: it is computed again when
/// the named pins or the named scopes change (checked on every request), and when a blob
/// that is not in it is asked for after blobs were written (at most once per
/// [`SharePolicy::with_refresh`], default 1 s). A blob deleted from a shared DAG may stay
/// servable until then — it was shared a moment ago.
///
/// Peer exchange: the node's known peers go only to the endpoints given to
/// [`SharePolicy::with_peers_to`] (none by default): a node sharing part of its store does
/// not tell strangers where other nodes are.
///
/// The set holds at most [`SharePolicy::with_max_blobs`] CIDs (default: the index's
/// `reachable_limit`); past it the rest is not served (fail closed) and a warning is logged.
pub struct SharePolicy {
    index: Index,
    names: Vec<String>,
    peers_to: HashSet<EndpointId>,
    max_blobs: usize,
    refresh: Duration,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for SharePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharePolicy")
            .field("names", &self.names)
            .field("peers_to", &self.peers_to.len())
            .finish_non_exhaustive()
    }
}

/// What the cached set was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    /// The named pins' targets, in name order.
    pins: Vec<(String, String)>,
    /// The shared scopes' generations.
    scopes: Vec<(String, u64)>,
}

#[derive(Default)]
struct State {
    key: Option<Key>,
    dag_generation: u64,
    computed_at: Option<Instant>,
    shared: Arc<Shared>,
}

/// The shared set at one moment.
#[derive(Debug, Default)]
struct Shared {
    cids: HashSet<Cid>,
    scopes: HashSet<String>,
}

impl SharePolicy {
    /// Shares what the pins or scopes called `names` hold, read from `index`.
    pub fn new(index: Index, names: impl IntoIterator<Item = impl Into<String>>) -> SharePolicy {
        let max_blobs = index.config().reachable_limit;
        SharePolicy {
            index,
            names: names.into_iter().map(Into::into).collect(),
            peers_to: HashSet::new(),
            max_blobs,
            refresh: Duration::from_secs(1),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Hands the known peers (peer exchange) to these endpoints only.
    pub fn with_peers_to(mut self, ids: impl IntoIterator<Item = EndpointId>) -> SharePolicy {
        self.peers_to = ids.into_iter().collect();
        self
    }

    /// Most CIDs the shared set holds.
    pub fn with_max_blobs(mut self, max: usize) -> SharePolicy {
        self.max_blobs = max;
        self
    }

    /// Shortest time between two recomputations caused by new blobs alone.
    pub fn with_refresh(mut self, refresh: Duration) -> SharePolicy {
        self.refresh = refresh;
        self
    }

    /// The names shared.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The pins and scopes the names stand for now, with their generations.
    async fn key(&self) -> Result<(Key, Vec<Cid>), IndexError> {
        let mut pins = Vec::new();
        let mut roots = Vec::new();
        let mut scope_names: Vec<String> = self.names.clone();
        for pin in self.index.pins().await? {
            if !self.names.contains(&pin.name) {
                continue;
            }
            match pin.target {
                PinTarget::Root(cid) => {
                    pins.push((pin.name, format!("root {cid}")));
                    roots.push(cid);
                }
                PinTarget::Scope(scope) => {
                    pins.push((pin.name, format!("scope {scope}")));
                    scope_names.push(scope);
                }
            }
        }
        scope_names.sort();
        scope_names.dedup();
        let mut scopes = Vec::with_capacity(scope_names.len());
        for name in scope_names {
            let generation = self.index.generation(&name).await?;
            scopes.push((name, generation));
        }
        Ok((Key { pins, scopes }, roots))
    }

    /// Every CID the names share now (bounded by `max_blobs`).
    async fn compute(&self, key: &Key, mut roots: Vec<Cid>) -> Result<Shared, IndexError> {
        let mut shared = Shared::default();
        for (scope, _) in &key.scopes {
            shared.scopes.insert(scope.clone());
            for member in self.index.scope_members(scope).await? {
                roots.push(member);
            }
        }
        let mut cut = false;
        for root in roots {
            if shared.cids.contains(&root) {
                continue;
            }
            let room = self.max_blobs.saturating_sub(shared.cids.len());
            if room == 0 {
                cut = true;
                break;
            }
            let dag = self.index.walk(&root, room).await?;
            cut |= !dag.complete;
            shared.cids.extend(dag.present);
        }
        if cut {
            tracing::warn!(
                "--share: more than {} blobs shared; the rest is not served",
                self.max_blobs
            );
        }
        Ok(shared)
    }

    /// The shared set, recomputed if the names' pins or scopes changed, or if one of
    /// `wanted` is not in it and blobs were written since (throttled).
    async fn shared(&self, wanted: &[Cid]) -> Arc<Shared> {
        let mut state = self.state.lock().await;
        match self.refreshed(&mut state, wanted).await {
            Ok(()) => state.shared.clone(),
            Err(e) => {
                // Fail closed: nothing is served while the index cannot say what is shared.
                tracing::warn!("--share: cannot read what is shared: {e}");
                Arc::new(Shared::default())
            }
        }
    }

    async fn refreshed(&self, state: &mut State, wanted: &[Cid]) -> Result<(), IndexError> {
        let (key, roots) = self.key().await?;
        let changed = state.key.as_ref() != Some(&key);
        let unknown = wanted.iter().any(|c| !state.shared.cids.contains(c));
        let mut dag_generation = state.dag_generation;
        let grown = if changed || !unknown {
            false
        } else {
            let due = state
                .computed_at
                .is_none_or(|at| at.elapsed() >= self.refresh);
            if due {
                dag_generation = self.index.dag_generation().await?;
            }
            due && dag_generation != state.dag_generation
        };
        if !changed && !grown {
            return Ok(());
        }
        if changed {
            dag_generation = self.index.dag_generation().await?;
        }
        let shared = self.compute(&key, roots).await?;
        *state = State {
            key: Some(key),
            dag_generation,
            computed_at: Some(Instant::now()),
            shared: Arc::new(shared),
        };
        Ok(())
    }
}

#[async_trait::async_trait]
impl ServePolicy for SharePolicy {
    async fn may_read_scope(&self, _remote: &EndpointId, scope: &Scope) -> bool {
        match scope {
            Scope::Named(name) => self.shared(&[]).await.scopes.contains(name),
            Scope::Dag(root) => self.shared(&[*root]).await.cids.contains(root),
        }
    }

    async fn may_read_blob(&self, _remote: &EndpointId, cid: &Cid) -> bool {
        self.shared(&[*cid]).await.cids.contains(cid)
    }

    async fn may_read_blobs(&self, _remote: &EndpointId, cids: &[Cid]) -> Vec<bool> {
        let shared = self.shared(cids).await;
        cids.iter().map(|c| shared.cids.contains(c)).collect()
    }

    async fn may_list_peers(&self, remote: &EndpointId) -> bool {
        self.peers_to.contains(remote)
    }
}

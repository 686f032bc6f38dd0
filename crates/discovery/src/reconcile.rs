//! Range-based set reconciliation (negentropy) between a local haves snapshot and a peer's.
//!
//! The initiator (the side discovering) learns which ids the responder holds that its own
//! snapshot lacks. Ids are hashes, so the initiator of a named-scope reconciliation asks the
//! responder to map them back to CIDs (`want` in the next request, answered in `cids`); a
//! DAG discovery does not, since it learns the CIDs it is missing from links.
//!
//! The responder is stateless between rounds: every answer is computed from the snapshot
//! alone, so any responder answer can be served from the shared cached [`Haves`].

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;
use negentropy::{Negentropy, NegentropyStorageVector};

use crate::error::{Error, Result};
use crate::haves::Haves;
use crate::item::ItemId;
use crate::message::Message;

/// Answers one reconciliation request from `haves` (the responder's side).
///
/// # Errors
/// [`Error::Protocol`] for a malformed negentropy message or more than `max_want` ids to
/// resolve.
pub(crate) fn answer(
    haves: &Haves,
    request: &Message,
    frame_limit: u64,
    max_want: usize,
) -> Result<Message> {
    if request.want.len() > max_want {
        return Err(Error::protocol(format!(
            "{} ids to resolve, limit {max_want}",
            request.want.len()
        )));
    }
    let negentropy = if request.negentropy.is_empty() {
        Bytes::new()
    } else {
        let mut ne = Negentropy::borrowed(haves.storage(), frame_limit)?;
        Bytes::from(ne.reconcile(&request.negentropy)?)
    };
    let cids = request
        .want
        .iter()
        .filter_map(|id| haves.cid_of(id))
        .collect();
    Ok(Message {
        negentropy,
        want: Vec::new(),
        cids,
    })
}

/// What one answer taught the initiator.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Ids the responder holds and the local snapshot lacks.
    pub need: Vec<ItemId>,
    /// CIDs of ids asked for in the request this answers.
    pub resolved: Vec<Cid>,
}

/// The initiator's side of one reconciliation.
pub(crate) struct Initiator<'a> {
    ne: Negentropy<'a, NegentropyStorageVector>,
    /// Whether needed ids are resolved to CIDs through the responder.
    resolve: bool,
    max_want: usize,
    /// Needed ids not yet asked for.
    unresolved: Vec<ItemId>,
    /// Ids asked for in the last request.
    asked: HashSet<ItemId>,
    negentropy_done: bool,
}

impl<'a> Initiator<'a> {
    /// Starts a reconciliation of `haves`; returns the first request.
    pub fn start(
        haves: &'a Haves,
        frame_limit: u64,
        resolve: bool,
        max_want: usize,
    ) -> Result<(Self, Message)> {
        let mut ne = Negentropy::borrowed(haves.storage(), frame_limit)?;
        let first = ne.initiate()?;
        let initiator = Initiator {
            ne,
            resolve,
            max_want: max_want.max(1),
            unresolved: Vec::new(),
            asked: HashSet::new(),
            negentropy_done: false,
        };
        let request = Message {
            negentropy: Bytes::from(first),
            ..Message::default()
        };
        Ok((initiator, request))
    }

    /// Takes the answer to the last request; returns what it taught and the next request,
    /// `None` when the reconciliation is over.
    ///
    /// # Errors
    /// [`Error::Protocol`] if the answer is malformed or resolves ids nobody asked for.
    pub fn receive(&mut self, answer: Message) -> Result<(Learned, Option<Message>)> {
        let mut learned = Learned::default();
        for cid in answer.cids {
            if !self.asked.remove(&ItemId::of(&cid)) {
                return Err(Error::protocol(format!(
                    "resolved {cid}, which was not asked for"
                )));
            }
            learned.resolved.push(cid);
        }
        self.asked.clear();
        let mut next_negentropy = Bytes::new();
        if !self.negentropy_done {
            if answer.negentropy.is_empty() {
                return Err(Error::protocol("answer without its negentropy part"));
            }
            let mut have = Vec::new();
            let mut need = Vec::new();
            match self
                .ne
                .reconcile_with_ids(&answer.negentropy, &mut have, &mut need)?
            {
                Some(next) => next_negentropy = Bytes::from(next),
                None => self.negentropy_done = true,
            }
            learned.need = need.iter().map(ItemId::from_negentropy).collect();
            if self.resolve {
                self.unresolved.extend(&learned.need);
            }
        }
        if self.negentropy_done && self.unresolved.is_empty() {
            return Ok((learned, None));
        }
        let take = self.unresolved.len().min(self.max_want);
        let want: Vec<ItemId> = self.unresolved.drain(..take).collect();
        self.asked.extend(&want);
        let next = Message {
            negentropy: next_negentropy,
            want,
            cids: Vec::new(),
        };
        Ok((learned, Some(next)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use seedbank_blobstore::{codec, Blob};

    use super::*;
    use crate::haves::{BuildKind, Node, NodeState, Sealed};
    use crate::scope::Scope;

    fn cids(range: std::ops::Range<u32>) -> Vec<Cid> {
        range
            .map(|i| *Blob::new(codec::RAW, i.to_le_bytes().to_vec()).cid())
            .collect()
    }

    fn haves(cids: &[Cid]) -> Haves {
        let nodes: HashMap<ItemId, Node> = cids
            .iter()
            .map(|c| {
                let node = Node {
                    cid: *c,
                    depth: 0,
                    state: NodeState::Present,
                };
                (ItemId::of(c), node)
            })
            .collect();
        let sealed = Arc::new(Sealed::new(nodes));
        Haves::new(Scope::named("t"), 1, BuildKind::Full, sealed, None)
    }

    /// Runs a whole reconciliation; returns what the initiator needs and resolved.
    fn exchange(local: &Haves, remote: &Haves, resolve: bool) -> (Vec<ItemId>, Vec<Cid>, usize) {
        let (mut initiator, mut request) = Initiator::start(local, 4096, resolve, 100).unwrap();
        let (mut need, mut resolved, mut rounds) = (Vec::new(), Vec::new(), 0);
        loop {
            rounds += 1;
            let reply = answer(remote, &request, 4096, 1000).unwrap();
            let (learned, next) = initiator.receive(reply).unwrap();
            need.extend(learned.need);
            resolved.extend(learned.resolved);
            match next {
                Some(next) => request = next,
                None => return (need, resolved, rounds),
            }
        }
    }

    #[test]
    fn reconciliation_finds_exactly_what_the_responder_has_and_resolves_it() {
        let local = haves(&cids(0..3000));
        let mut theirs = cids(0..3000);
        theirs.retain(|c| c != &cids(17..18)[0]);
        let extra = cids(5000..5250);
        theirs.extend(&extra);
        let remote = haves(&theirs);
        let (need, resolved, rounds) = exchange(&local, &remote, true);
        let set = |ids: Vec<ItemId>| ids.into_iter().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(set(need), set(extra.iter().map(ItemId::of).collect()));
        assert_eq!(
            set(resolved.iter().map(ItemId::of).collect()),
            set(extra.iter().map(ItemId::of).collect())
        );
        assert_eq!(
            resolved.len(),
            extra.len(),
            "each resolved once, 100 ids per request"
        );
        assert!(rounds >= 3);
        let (need, resolved, _) = exchange(&local, &remote, false);
        assert_eq!(
            (need.len(), resolved.len()),
            (250, 0),
            "DAG sessions do not resolve"
        );
    }

    #[test]
    fn a_resolution_nobody_asked_for_is_a_protocol_error() {
        let local = haves(&cids(0..10));
        let remote = haves(&cids(0..20));
        let (mut initiator, request) = Initiator::start(&local, 0, true, 100).unwrap();
        let mut reply = answer(&remote, &request, 0, 100).unwrap();
        reply.cids = cids(100..101);
        assert!(matches!(
            initiator.receive(reply),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn a_responder_refuses_too_many_ids_to_resolve() {
        let remote = haves(&cids(0..5));
        let request = Message {
            want: vec![ItemId([0; 32]); 11],
            ..Message::default()
        };
        assert!(answer(&remote, &request, 0, 10).is_err());
        let fine = answer(
            &remote,
            &Message {
                want: vec![ItemId::of(&cids(0..1)[0])],
                ..Message::default()
            },
            0,
            10,
        )
        .unwrap();
        assert_eq!(fine.cids, cids(0..1));
        assert!(fine.negentropy.is_empty());
    }
}

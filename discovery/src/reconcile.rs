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

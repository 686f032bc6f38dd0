//! Which request the lane runs next: priority classes with guaranteed minimum shares, and
//! deficit round robin across sources within a class.
//!
//! Pure data structure (no locking, no I/O), so its fairness can be tested directly.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::request::Request;
use crate::config::Priority;

/// The queued requests of one source.
#[derive(Default)]
struct SourceQueue {
    /// DRR deficit in cost units.
    deficit: usize,
    requests: VecDeque<Request>,
}

/// One priority class: sources served by deficit round robin.
#[derive(Default)]
struct ClassQueue {
    /// Sources with queued work, in round-robin order; the front is being served.
    ring: VecDeque<Arc<str>>,
    sources: HashMap<Arc<str>, SourceQueue>,
    /// Coalescing key → source whose queue holds the pending request with that key.
    coalesce: HashMap<String, Arc<str>>,
    requests: usize,
    bytes: usize,
}

/// Result of [`Scheduler::push`].
pub(crate) enum Pushed {
    /// Queued as a new request.
    Queued,
    /// Replaced a pending request with the same coalescing key; that older request is
    /// returned so the caller can release its admission and tell its owner.
    Replaced(Request),
}

/// The queues of all classes plus the state that enforces minimum shares.
pub(crate) struct Scheduler {
    classes: [ClassQueue; 3],
    /// Batches since each class last led one (see [`Scheduler::start_batch`]).
    since_lead: [u32; 3],
    /// A lower class leads at least one batch in this many while it has work.
    lead_every: u32,
    quantum: usize,
    /// Class order for the batch being filled: the leader first, then by priority.
    order: [Priority; 3],
}

impl Scheduler {
    /// `min_share` in (0, 1] is the lowest share of batches a waiting lower class leads;
    /// `quantum` is the DRR quantum in cost units.
    pub fn new(min_share: f64, quantum: usize) -> Self {
        let lead_every = if min_share > 0.0 {
            (1.0 / min_share).ceil().max(1.0) as u32
        } else {
            u32::MAX
        };
        Scheduler {
            classes: Default::default(),
            since_lead: [0; 3],
            lead_every,
            quantum: quantum.max(1),
            order: Priority::ALL,
        }
    }

    /// Queues a request; an app write whose coalescing key matches a pending one replaces it
    /// in place (keeping the older request's turn, so repeated coalescing cannot starve it).
    pub fn push(&mut self, mut req: Request) -> Pushed {
        let class = &mut self.classes[req.class.index()];
        if let Some(key) = req.coalesce_key.clone() {
            if let Some(source) = class.coalesce.get(&key).cloned() {
                let queue = class
                    .sources
                    .get_mut(&source)
                    .expect("coalesce index is in sync");
                let slot = queue
                    .requests
                    .iter_mut()
                    .find(|r| r.coalesce_key.as_deref() == Some(key.as_str()))
                    .expect("coalesce index is in sync");
                class.bytes = class.bytes + req.bytes - slot.bytes;
                // The newer request takes the older one's place in the queue.
                std::mem::swap(&mut slot.work, &mut req.work);
                std::mem::swap(&mut slot.ack, &mut req.ack);
                std::mem::swap(&mut slot.bytes, &mut req.bytes);
                std::mem::swap(&mut slot.byte_permits, &mut req.byte_permits);
                // Batches waited are counted for the caller the ack goes to: from the
                // newer request's own admission.
                std::mem::swap(&mut slot.admitted_after, &mut req.admitted_after);
                return Pushed::Replaced(req);
            }
            class.coalesce.insert(key, req.source.clone());
        }
        class.requests += 1;
        class.bytes += req.bytes;
        let source = req.source.clone();
        let queue = class.sources.entry(source.clone()).or_default();
        if queue.requests.is_empty() {
            class.ring.push_back(source);
        }
        queue.requests.push_back(req);
        Pushed::Queued
    }

    /// True when no request is queued in any class.
    pub fn is_empty(&self) -> bool {
        self.classes.iter().all(|c| c.requests == 0)
    }

    /// Queued requests and bytes of a class.
    pub fn queued(&self, class: Priority) -> (usize, usize) {
        let c = &self.classes[class.index()];
        (c.requests, c.bytes)
    }

    /// Chooses the class that leads the next batch: normally the highest class with work,
    /// but a lower class that has waited `lead_every - 1` batches leads this one.
    pub fn start_batch(&mut self) {
        let has_work = |p: Priority| self.classes[p.index()].requests > 0;
        let owed = [Priority::Background, Priority::Normal]
            .into_iter()
            .filter(|&p| has_work(p) && self.since_lead[p.index()] + 1 >= self.lead_every)
            .max_by_key(|&p| self.since_lead[p.index()]);
        let leader = owed.or_else(|| Priority::ALL.into_iter().find(|&p| has_work(p)));
        let Some(leader) = leader else { return };
        for p in Priority::ALL {
            if p == leader {
                self.since_lead[p.index()] = 0;
            } else if has_work(p) {
                self.since_lead[p.index()] = self.since_lead[p.index()].saturating_add(1);
            }
        }
        // An owed class fills its batch first; otherwise strict priority, so work of a
        // higher class arriving mid-batch is taken at the next pick.
        self.order = match owed {
            Some(owed) => {
                let mut rest = Priority::ALL.into_iter().filter(|&p| p != owed);
                [
                    owed,
                    rest.next().expect("three classes"),
                    rest.next().expect("three"),
                ]
            }
            None => Priority::ALL,
        };
    }

    /// The next request for the batch being filled, in the order chosen by `start_batch`.
    pub fn pop(&mut self) -> Option<Request> {
        let order = self.order;
        order.into_iter().find_map(|p| self.pop_class(p))
    }

    /// Deficit round robin within one class.
    pub fn pop_class(&mut self, class: Priority) -> Option<Request> {
        let quantum = self.quantum;
        let c = &mut self.classes[class.index()];
        loop {
            let source = c.ring.front()?.clone();
            let queue = c
                .sources
                .get_mut(&source)
                .expect("ring and sources are in sync");
            let cost = queue
                .requests
                .front()
                .expect("queued sources are non-empty")
                .cost();
            if queue.deficit < cost {
                queue.deficit += quantum;
                c.ring.rotate_left(1);
                continue;
            }
            queue.deficit -= cost;
            let req = queue.requests.pop_front().expect("checked non-empty");
            if queue.requests.is_empty() {
                c.sources.remove(&source);
                c.ring.pop_front();
            }
            c.requests -= 1;
            c.bytes -= req.bytes;
            if let Some(key) = &req.coalesce_key {
                c.coalesce.remove(key);
            }
            return Some(req);
        }
    }

    /// Removes every queued request.
    #[cfg(test)]
    pub fn drain_all(&mut self) -> Vec<Request> {
        let mut out = Vec::new();
        for c in &mut self.classes {
            for (_, q) in c.sources.drain() {
                out.extend(q.requests);
            }
            *c = ClassQueue::default();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::request::Work;
    use tokio::sync::oneshot;

    fn req(class: Priority, source: &str, bytes: usize) -> Request {
        let (ack, _rx) = oneshot::channel();
        Request {
            class,
            source: Arc::from(source),
            work: Work::Blobs(Vec::new()),
            bytes,
            blobs: 1,
            coalesce_key: None,
            enqueued: std::time::Instant::now(),
            admitted_after: 0,
            ack,
            byte_permits: 0,
        }
    }

    #[test]
    fn equal_sources_alternate_under_drr() {
        let mut s = Scheduler::new(0.1, 4096);
        for _ in 0..100 {
            s.push(req(Priority::Normal, "a", 1000));
            s.push(req(Priority::Normal, "b", 1000));
        }
        s.start_batch();
        let mut served = HashMap::new();
        for _ in 0..100 {
            let r = s.pop().unwrap();
            *served.entry(r.source.to_string()).or_insert(0) += 1;
        }
        let a = served["a"];
        assert!((45..=55).contains(&a), "a served {a} of 100");
    }

    #[test]
    fn higher_class_goes_first() {
        let mut s = Scheduler::new(0.1, 4096);
        s.push(req(Priority::Background, "bulk", 10));
        s.push(req(Priority::Interactive, "user", 10));
        s.start_batch();
        assert_eq!(s.pop().unwrap().class, Priority::Interactive);
    }

    #[test]
    fn background_leads_one_batch_in_ten_under_interactive_load() {
        let mut s = Scheduler::new(0.1, 4096);
        let mut led = 0;
        for _ in 0..100 {
            s.push(req(Priority::Interactive, "user", 10));
            s.push(req(Priority::Background, "bulk", 10));
            s.start_batch();
            if s.pop().unwrap().class == Priority::Background {
                led += 1;
            }
            s.drain_all();
        }
        assert_eq!(led, 10);
    }
}

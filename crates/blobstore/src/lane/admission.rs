//! Bounded admission per priority class: a request takes one request permit and one byte
//! permit per blob byte before it is queued, and gives them back when the lane is done with
//! it. Tokio's semaphores are FIFO, so waiting producers are admitted in arrival order.

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::config::QueueBounds;
use crate::error::{Error, Result};

/// The admission bounds of one class.
pub(crate) struct Admission {
    requests: Semaphore,
    bytes: Semaphore,
    max_bytes: u32,
}

/// Permits taken for one request; returned on drop unless [`Permits::keep`] is called.
pub(crate) struct Permits<'a> {
    request: SemaphorePermit<'a>,
    bytes: SemaphorePermit<'a>,
}

impl Admission {
    pub fn new(bounds: QueueBounds) -> Self {
        let max_bytes = u32::try_from(bounds.max_bytes).unwrap_or(u32::MAX);
        Admission {
            requests: Semaphore::new(bounds.max_requests.max(1)),
            bytes: Semaphore::new(max_bytes as usize),
            max_bytes,
        }
    }

    /// Waits for room for a request of `bytes` bytes, until `deadline` if one is given.
    /// A request larger than the whole byte bound waits until the queue is empty of bytes.
    pub async fn acquire(&self, bytes: usize, deadline: Option<Instant>) -> Result<Permits<'_>> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX).min(self.max_bytes);
        let take = async {
            let request = self.requests.acquire().await.map_err(|_| Error::Closed)?;
            let bytes = self
                .bytes
                .acquire_many(n)
                .await
                .map_err(|_| Error::Closed)?;
            Ok(Permits { request, bytes })
        };
        match deadline {
            None => take.await,
            Some(at) => tokio::time::timeout_at(at, take)
                .await
                .map_err(|_| Error::Overloaded)?,
        }
    }

    /// Gives back the room of a request that left the queue.
    pub fn release(&self, byte_permits: u32) {
        self.requests.add_permits(1);
        self.bytes.add_permits(byte_permits as usize);
    }

    /// Fails every waiting and future `acquire` with [`Error::Closed`].
    pub fn close(&self) {
        self.requests.close();
        self.bytes.close();
    }
}

impl Permits<'_> {
    /// Byte permits held.
    pub fn bytes(&self) -> u32 {
        self.bytes.num_permits() as u32
    }

    /// Keeps the room taken until [`Admission::release`] gives it back.
    pub fn keep(self) {
        self.request.forget();
        self.bytes.forget();
    }
}

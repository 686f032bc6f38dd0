//! Streamed response bodies: a producer task writes chunks into a small bounded channel
//! (so reading the store overlaps sending to the socket, and memory is a few chunks), and
//! the body ends cleanly only when the producer said it finished. A producer that failed,
//! timed out or vanished makes the body end with an error, so the connection is cut
//! (no terminating chunk): a client never takes a short body for a complete one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

/// Chunks held in a body's channel.
const CHANNEL_CHUNKS: usize = 4;

/// What a producer sends.
enum Msg {
    Data(Bytes),
    Done,
    Fail(String),
}

/// The producer's end of a streamed body.
pub(crate) struct Sink {
    tx: mpsc::Sender<Msg>,
    stall: Duration,
    deadline: Instant,
}

/// Why a producer stops early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The client went away or stopped reading for too long.
    Gone,
    /// The response took longer than its limit.
    TimedOut,
}

impl Sink {
    /// Sends one chunk; waits at most the stall timeout for room.
    pub async fn send(&self, data: Bytes) -> Result<(), Stop> {
        if Instant::now() >= self.deadline {
            return Err(Stop::TimedOut);
        }
        let wait = self.stall.min(self.deadline - Instant::now());
        match tokio::time::timeout(wait, self.tx.send(Msg::Data(data))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) if Instant::now() >= self.deadline => Err(Stop::TimedOut),
            Err(_) => Err(Stop::Gone),
        }
    }

    /// The body is complete.
    pub async fn finish(self) {
        let _ = self.tx.send(Msg::Done).await;
    }

    /// The body is cut with `why` (logged; the client sees the connection end).
    pub async fn fail(self, why: String) {
        tracing::debug!("gateway response aborted: {why}");
        let _ = self.tx.send(Msg::Fail(why)).await;
    }

    /// True once the response's time is up.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// `e` and its causes, `: `-separated: why a body was cut, as text (the only place it goes
/// is a log line; the client sees the connection end, never our error types).
pub(crate) fn why(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Runs `produce` on its own task and returns the body it feeds.
pub(crate) fn spawn<F, Fut>(stall: Duration, max_time: Duration, produce: F) -> Body
where
    F: FnOnce(Sink) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let sink = Sink {
        tx,
        stall,
        deadline: Instant::now() + max_time,
    };
    tokio::spawn(produce(sink));
    Body::new(ChannelBody { rx, done: false })
}

struct ChannelBody {
    rx: mpsc::Receiver<Msg>,
    done: bool,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Msg::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Msg::Done)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Msg::Fail(why))) => {
                self.done = true;
                Poll::Ready(Some(Err(std::io::Error::other(why))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(std::io::Error::other(
                    "the response ended before it was complete",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// A body holding a request slot until it is finished or dropped.
pub(crate) struct PermitBody {
    pub inner: Body,
    pub permit: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for PermitBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

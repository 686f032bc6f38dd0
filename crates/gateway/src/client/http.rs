//! HTTP plumbing of the gateway client: bodies read with a per-read idle timeout, and the
//! errors of a request turned into discovery errors naming the gateway.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use seedbank_discovery::Error;

/// A response body as a stream of chunks; a read that waits longer than the idle timeout
/// ends it with an [`io::ErrorKind::TimedOut`] error.
pub(crate) type Body = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// `response`'s body, each read bounded by `idle`.
pub(crate) fn body(response: reqwest::Response, idle: Duration) -> Body {
    let chunks = response.bytes_stream();
    Box::pin(futures_util::stream::unfold(
        Some(chunks),
        move |chunks| async move {
            let mut chunks = chunks?;
            match tokio::time::timeout(idle, chunks.next()).await {
                Err(_) => Some((
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no bytes for {idle:?}"),
                    )),
                    None,
                )),
                Ok(None) => None,
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
                Ok(Some(Err(e))) => Some((Err(io::Error::other(e)), None)),
            }
        },
    ))
}

/// A stalled gateway: no answer within the request deadline, or a read past the idle
/// timeout.
pub(crate) fn stalled(peer: &str) -> Error {
    Error::Timeout {
        peer: peer.to_string(),
        op: seedbank_discovery::PeerCall::Fetch,
    }
}

/// A gateway that failed: could not be reached, answered an error, cut its body.
pub(crate) fn failed(peer: &str, what: impl std::fmt::Display) -> Error {
    Error::transport(format!("gateway {peer}: {what}"))
}

/// A gateway that failed with an error of its own (kept as the source).
pub(crate) fn failed_caused(
    peer: &str,
    what: impl std::fmt::Display,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::transport_caused(format!("gateway {peer}: {what}"), source)
}

/// A gateway that lied: a block not asked for, a malformed answer.
pub(crate) fn lied(peer: &str, what: impl Into<String>) -> Error {
    Error::Protocol {
        peer: Some(peer.to_string()),
        reason: what.into(),
        source: None,
    }
}

/// A gateway that lied, as a decoder or the store found (their error kept as the source).
pub(crate) fn lied_caused(
    peer: &str,
    what: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::protocol_caused(Some(peer.to_string()), what, source)
}

/// The error of a failed read of a body.
pub(crate) fn read_error(peer: &str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::TimedOut {
        stalled(peer)
    } else {
        failed_caused(peer, "body cut", e)
    }
}

/// The error of a request that got no response.
pub(crate) fn send_error(peer: &str, e: reqwest::Error) -> Error {
    if e.is_timeout() {
        stalled(peer)
    } else {
        failed_caused(peer, "request failed", e)
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    #[test]
    fn a_cut_body_keeps_the_read_error_as_its_source() {
        let err = super::read_error("g", io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        assert!(matches!(err, super::Error::Transport { .. }), "{err:?}");
        let source = std::error::Error::source(&err).expect("the read error is kept");
        let read = source.downcast_ref::<io::Error>().expect("an I/O error");
        assert_eq!(read.kind(), io::ErrorKind::ConnectionReset);
    }
}

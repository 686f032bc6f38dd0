//! The request and response bodies carried by [`frame`](crate::frame)s, and their caps.
//!
//! Bodies use unsigned LEB128 varints for counts and lengths. Every count is checked against
//! both a fixed cap and the bytes actually present before anything is reserved.
//!
//! | kind | body |
//! |---|---|
//! | `Reconcile` request | `len(scope) scope-utf8 | Message::encode()` |
//! | `Fetch` request | `count (len(cid) cid)×` |
//! | `Peers` request | empty |
//! | `Reconciled` response | `Message::encode()` |
//! | `Blobs` response | `count (len(cid) cid len(data) data)×` |
//! | `PeerList` response | `count (len(ticket) ticket-utf8)×` |
//! | `Busy` response | empty |
//! | `Failed` response | `code: u8 | reason-utf8` |

use bytes::{BufMut, Bytes, BytesMut};
use cid::Cid;
use seedbank_discovery::{Cause, Message, Scope};
use unsigned_varint::{decode, encode};

/// Longest scope text (`name:...` / `dag:...`) a request may carry.
pub const MAX_SCOPE_BYTES: usize = 1024;
/// Most CIDs one fetch request may ask for.
pub const MAX_FETCH_CIDS: usize = 1024;
/// Most bytes of one CID on the wire.
pub const MAX_CID_BYTES: usize = 128;
/// Most ids a reconcile request may ask to resolve, and CIDs an answer may carry.
pub const MAX_WANT: usize = 16_384;
/// Most tickets one peer-exchange answer carries.
pub const MAX_PEERS: usize = 32;
/// Longest ticket text.
pub const MAX_TICKET_BYTES: usize = 1024;
/// Longest error reason.
pub const MAX_REASON_BYTES: usize = 1024;

/// Frame kinds. Requests are below `0x80`, responses above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Request: one reconciliation round for a scope.
    Reconcile = 0x01,
    /// Request: the bytes of some CIDs.
    Fetch = 0x02,
    /// Request: tickets of other peers the node knows.
    Peers = 0x03,
    /// Response to `Reconcile`.
    Reconciled = 0x81,
    /// Response to `Fetch`.
    Blobs = 0x82,
    /// Response to `Peers`.
    PeerList = 0x83,
    /// Response: admission limit reached, try later or elsewhere.
    Busy = 0x90,
    /// Response: the request failed (see [`FailCode`]).
    Failed = 0x91,
}

impl Kind {
    /// The kind with this byte, if any.
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0x01 => Kind::Reconcile,
            0x02 => Kind::Fetch,
            0x03 => Kind::Peers,
            0x81 => Kind::Reconciled,
            0x82 => Kind::Blobs,
            0x83 => Kind::PeerList,
            0x90 => Kind::Busy,
            0x91 => Kind::Failed,
            _ => return None,
        })
    }

    /// True for request kinds.
    pub fn is_request(self) -> bool {
        (self as u8) < 0x80
    }

    /// The largest body of this kind either side accepts.
    pub fn cap(self) -> usize {
        match self {
            // 256 KiB negentropy + 16,384 ids × 32 bytes, with room to spare.
            Kind::Reconcile => 2 << 20,
            Kind::Fetch => 8 + MAX_FETCH_CIDS * (2 + MAX_CID_BYTES),
            Kind::Peers | Kind::Busy => 0,
            // 256 KiB negentropy + 16,384 CIDs.
            Kind::Reconciled => 4 << 20,
            // The responder's 16 MiB answer budget plus per-blob framing.
            Kind::Blobs => MAX_BLOBS_BYTES + MAX_FETCH_CIDS * (12 + MAX_CID_BYTES),
            Kind::PeerList => 8 + MAX_PEERS * (2 + MAX_TICKET_BYTES),
            Kind::Failed => 1 + MAX_REASON_BYTES,
        }
    }
}

/// Most blob bytes one `Blobs` answer carries (the server leaves out what does not fit).
pub const MAX_BLOBS_BYTES: usize = 16 << 20;

/// Why a request failed, as carried by a `Failed` response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FailCode {
    /// The server could not decode the request: the client broke the protocol.
    BadRequest = 1,
    /// The serving policy does not let this peer read the scope.
    Denied = 2,
    /// The server failed (store closed, shutting down, ...).
    Internal = 3,
}

impl FailCode {
    fn from_u8(b: u8) -> FailCode {
        match b {
            1 => FailCode::BadRequest,
            2 => FailCode::Denied,
            _ => FailCode::Internal,
        }
    }
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// One reconciliation round.
    Reconcile(Scope, Message),
    /// Blob bytes.
    Fetch(Vec<Cid>),
    /// Peer exchange.
    Peers,
}

/// A decoded response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Answer to a reconciliation round.
    Reconciled(Message),
    /// Blobs the server has among those asked for.
    Blobs(Vec<(Cid, Bytes)>),
    /// Ticket texts of other peers.
    PeerList(Vec<String>),
    /// Admission limit reached.
    Busy,
    /// The request failed.
    Failed(FailCode, String),
}

/// A body that does not decode.
#[derive(Clone, Debug, thiserror::Error)]
#[error("malformed {kind:?} body: {reason}")]
pub struct BodyError {
    /// The frame kind.
    pub kind: Kind,
    /// What was wrong.
    pub reason: String,
    /// The decoder's error behind it, when there is one (the reconciliation message's, the
    /// scope's).
    #[source]
    pub source: Option<Cause>,
}

impl BodyError {
    fn new(kind: Kind, reason: &str) -> Self {
        BodyError {
            kind,
            reason: reason.to_string(),
            source: None,
        }
    }

    fn caused(
        kind: Kind,
        reason: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        BodyError {
            source: Some(Cause::new(source)),
            ..BodyError::new(kind, reason)
        }
    }
}

impl Request {
    /// The frame kind and body of this request.
    pub fn encode(&self) -> (Kind, Vec<u8>) {
        let mut out = Vec::new();
        match self {
            Request::Reconcile(scope, message) => {
                put_bytes(&mut out, scope.to_string().as_bytes());
                out.extend_from_slice(&message.encode());
                (Kind::Reconcile, out)
            }
            Request::Fetch(cids) => {
                put_len(&mut out, cids.len());
                for cid in cids {
                    put_bytes(&mut out, &cid.to_bytes());
                }
                (Kind::Fetch, out)
            }
            Request::Peers => (Kind::Peers, out),
        }
    }

    /// Decodes a request body of `kind`.
    ///
    /// # Errors
    /// [`BodyError`] for a malformed body, a count over its cap, or a response kind.
    pub fn decode(kind: Kind, body: &[u8]) -> Result<Request, BodyError> {
        let err = |reason: &str| BodyError::new(kind, reason);
        let bad = |m: Malformed| m.into_body(kind);
        let mut rest = body;
        let request = match kind {
            Kind::Reconcile => {
                let scope = take_str(&mut rest, MAX_SCOPE_BYTES).map_err(bad)?;
                let scope: Scope = scope
                    .parse()
                    .map_err(|e| BodyError::caused(kind, "bad scope", e))?;
                check_message(rest, false).map_err(bad)?;
                let message =
                    Message::decode(rest).map_err(|e| BodyError::caused(kind, "bad message", e))?;
                rest = &[];
                Request::Reconcile(scope, message)
            }
            Kind::Fetch => Request::Fetch(take_cids(&mut rest).map_err(bad)?),
            Kind::Peers => Request::Peers,
            _ => return Err(err("not a request kind")),
        };
        if !rest.is_empty() {
            return Err(err("trailing bytes"));
        }
        Ok(request)
    }
}

impl Response {
    /// The frame kind and body of this response, in one buffer.
    pub fn encode(&self) -> (Kind, Vec<u8>) {
        let (kind, parts) = self.encode_parts();
        (kind, parts.concat())
    }

    /// The frame kind and body of this response as parts to send in order: a `Blobs`
    /// answer shares each blob's bytes instead of copying them into one buffer (the copy was
    /// a sixth of a serving node's CPU). See [`frame::write_parts`](crate::frame::write_parts).
    pub fn encode_parts(&self) -> (Kind, Vec<Bytes>) {
        let mut out = Vec::new();
        match self {
            Response::Reconciled(message) => (Kind::Reconciled, vec![message.encode()]),
            Response::Blobs(blobs) => {
                // Framing of every blob goes in one buffer, split off between the blobs.
                let mut framing = BytesMut::new();
                let mut parts = Vec::with_capacity(2 * blobs.len() + 1);
                put_len(&mut framing, blobs.len());
                for (cid, data) in blobs {
                    put_bytes(&mut framing, &cid.to_bytes());
                    put_len(&mut framing, data.len());
                    parts.push(framing.split().freeze());
                    parts.push(data.clone());
                }
                parts.push(framing.freeze());
                parts.retain(|p| !p.is_empty());
                (Kind::Blobs, parts)
            }
            Response::PeerList(tickets) => {
                put_len(&mut out, tickets.len());
                for t in tickets {
                    put_bytes(&mut out, t.as_bytes());
                }
                (Kind::PeerList, vec![out.into()])
            }
            Response::Busy => (Kind::Busy, Vec::new()),
            Response::Failed(code, reason) => {
                out.push(*code as u8);
                out.extend_from_slice(truncate_utf8(reason, MAX_REASON_BYTES).as_bytes());
                (Kind::Failed, vec![out.into()])
            }
        }
    }

    /// Decodes a response body of `kind`.
    ///
    /// # Errors
    /// [`BodyError`] for a malformed body, a count over its cap, or a request kind.
    pub fn decode(kind: Kind, body: &[u8]) -> Result<Response, BodyError> {
        Self::decode_with(kind, body, Bytes::copy_from_slice)
    }

    /// As [`Response::decode`], but a `Blobs` answer's blobs are slices of `body`, not
    /// copies (they keep the whole body alive while any of them is).
    ///
    /// # Errors
    /// As [`Response::decode`].
    pub fn decode_shared(kind: Kind, body: &Bytes) -> Result<Response, BodyError> {
        Self::decode_with(kind, body, |data| body.slice_ref(data))
    }

    /// Decodes `body`; `own` turns a blob's bytes (a slice of `body`) into an owned `Bytes`.
    fn decode_with(
        kind: Kind,
        body: &[u8],
        own: impl Fn(&[u8]) -> Bytes,
    ) -> Result<Response, BodyError> {
        let err = |reason: &str| BodyError::new(kind, reason);
        let bad = |m: Malformed| m.into_body(kind);
        let mut rest = body;
        let response = match kind {
            Kind::Reconciled => {
                check_message(rest, true).map_err(bad)?;
                let message =
                    Message::decode(rest).map_err(|e| BodyError::caused(kind, "bad message", e))?;
                rest = &[];
                Response::Reconciled(message)
            }
            Kind::Blobs => {
                let count = take_count(&mut rest, MAX_FETCH_CIDS, 2).map_err(bad)?;
                let mut blobs = Vec::with_capacity(count);
                for _ in 0..count {
                    let cid = take_cid(&mut rest).map_err(bad)?;
                    let len = take_len(&mut rest).map_err(bad)?;
                    let data = take(&mut rest, len).map_err(err)?;
                    blobs.push((cid, own(data)));
                }
                Response::Blobs(blobs)
            }
            Kind::PeerList => {
                let count = take_count(&mut rest, MAX_PEERS, 1).map_err(bad)?;
                let mut tickets = Vec::with_capacity(count);
                for _ in 0..count {
                    tickets.push(
                        take_str(&mut rest, MAX_TICKET_BYTES)
                            .map_err(bad)?
                            .to_string(),
                    );
                }
                Response::PeerList(tickets)
            }
            Kind::Busy => Response::Busy,
            Kind::Failed => {
                let (&code, reason) = rest.split_first().ok_or_else(|| err("empty"))?;
                rest = &[];
                Response::Failed(
                    FailCode::from_u8(code),
                    String::from_utf8_lossy(reason).into_owned(),
                )
            }
            _ => return Err(err("not a response kind")),
        };
        if !rest.is_empty() {
            return Err(err("trailing bytes"));
        }
        Ok(response)
    }
}

/// Checks a `Message`'s counts before `Message::decode` sees it, so no count a peer chose
/// sizes an allocation: a request carries no CIDs and at most [`MAX_WANT`] ids; an answer
/// carries no ids and at most [`MAX_WANT`] CIDs.
fn check_message(bytes: &[u8], answer: bool) -> Result<(), Malformed> {
    let mut rest = bytes;
    let neg = take_len(&mut rest)?;
    take(&mut rest, neg)?;
    let want = take_len(&mut rest)?;
    if (answer && want != 0) || want > MAX_WANT {
        return Err("too many ids in message".into());
    }
    take(&mut rest, want.checked_mul(32).ok_or("truncated")?)?;
    let cids = take_len(&mut rest)?;
    // A CID entry is at least a length byte and a 4-byte CID.
    if (!answer && cids != 0) || cids > MAX_WANT || cids > rest.len() / 5 {
        return Err("too many CIDs in message".into());
    }
    Ok(())
}

fn put_len(out: &mut impl BufMut, n: usize) {
    out.put_slice(encode::usize(n, &mut encode::usize_buffer()));
}

fn put_bytes(out: &mut impl BufMut, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.put_slice(bytes);
}

/// What a body helper found wrong: a fixed reason, and the decoder's error when a decoder
/// found it. Both are small plain values, so the hot path allocates nothing; the cause is
/// boxed into the [`BodyError`] only when a body is refused.
#[derive(Debug)]
struct Malformed {
    reason: &'static str,
    source: Option<Decoder>,
}

/// The error of the decoder that refused part of a body.
#[derive(Debug)]
enum Decoder {
    Varint(decode::Error),
    Cid(cid::Error),
    Utf8(std::str::Utf8Error),
}

impl From<&'static str> for Malformed {
    fn from(reason: &'static str) -> Self {
        Malformed {
            reason,
            source: None,
        }
    }
}

impl Malformed {
    fn caused(reason: &'static str, source: Decoder) -> Self {
        Malformed {
            reason,
            source: Some(source),
        }
    }

    /// The body error for a frame of `kind`, the decoder's error kept as its source.
    fn into_body(self, kind: Kind) -> BodyError {
        match self.source {
            None => BodyError::new(kind, self.reason),
            Some(Decoder::Varint(e)) => BodyError::caused(kind, self.reason, e),
            Some(Decoder::Cid(e)) => BodyError::caused(kind, self.reason, e),
            Some(Decoder::Utf8(e)) => BodyError::caused(kind, self.reason, e),
        }
    }
}

fn take_len(rest: &mut &[u8]) -> Result<usize, Malformed> {
    let (n, tail) =
        decode::usize(rest).map_err(|e| Malformed::caused("bad varint", Decoder::Varint(e)))?;
    *rest = tail;
    Ok(n)
}

/// A count no larger than `cap` nor than the entries of `min_entry` bytes left can hold.
fn take_count(rest: &mut &[u8], cap: usize, min_entry: usize) -> Result<usize, Malformed> {
    let n = take_len(rest)?;
    if n > cap || n > rest.len() / min_entry {
        return Err("count over its cap or the bytes present".into());
    }
    Ok(n)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if rest.len() < n {
        return Err("truncated");
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_str<'a>(rest: &mut &'a [u8], cap: usize) -> Result<&'a str, Malformed> {
    let len = take_len(rest)?;
    if len > cap {
        return Err("string over its cap".into());
    }
    std::str::from_utf8(take(rest, len)?)
        .map_err(|e| Malformed::caused("not UTF-8", Decoder::Utf8(e)))
}

fn take_cid(rest: &mut &[u8]) -> Result<Cid, Malformed> {
    let len = take_len(rest)?;
    if len > MAX_CID_BYTES {
        return Err("CID over its cap".into());
    }
    Cid::try_from(take(rest, len)?).map_err(|e| Malformed::caused("bad CID", Decoder::Cid(e)))
}

fn take_cids(rest: &mut &[u8]) -> Result<Vec<Cid>, Malformed> {
    let count = take_count(rest, MAX_FETCH_CIDS, 5)?;
    (0..count).map(|_| take_cid(rest)).collect()
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedbank_blobstore::{codec, Blob};
    use seedbank_discovery::ItemId;
    use std::error::Error as _;

    fn cid(data: &[u8]) -> Cid {
        *Blob::new(codec::RAW, data.to_vec()).cid()
    }

    #[test]
    fn a_bad_cid_or_length_keeps_the_decoders_error_as_its_source() {
        // One blob whose 4-byte CID is all continuation bytes: the cid crate refuses it.
        let body = Bytes::from_static(&[1, 4, 0xff, 0xff, 0xff, 0xff, 0]);
        let err = Response::decode_shared(Kind::Blobs, &body).unwrap_err();
        assert_eq!(err.to_string(), "malformed Blobs body: bad CID");
        let cause = err.source().expect("the cid crate's error is kept");
        assert!(cause.downcast_ref::<cid::Error>().is_some(), "{cause:?}");
        // A count whose varint never ends.
        let err = Request::decode(Kind::Fetch, &[0x80]).unwrap_err();
        assert_eq!(err.to_string(), "malformed Fetch body: bad varint");
        assert_eq!(
            err.source().and_then(|c| c.downcast_ref::<decode::Error>()),
            Some(&decode::Error::Insufficient)
        );
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let requests = [
            Request::Reconcile(
                Scope::named("doc:1"),
                Message {
                    negentropy: Bytes::from_static(&[0x61, 1]),
                    want: vec![ItemId([3; 32])],
                    cids: vec![],
                },
            ),
            Request::Reconcile(Scope::dag(cid(b"r")), Message::default()),
            Request::Fetch(vec![cid(b"a"), cid(b"b")]),
            Request::Peers,
        ];
        for r in requests {
            let (kind, body) = r.encode();
            assert!(kind.is_request() && body.len() <= kind.cap());
            assert_eq!(Request::decode(kind, &body).unwrap(), r);
        }
        let responses = [
            Response::Reconciled(Message {
                negentropy: Bytes::new(),
                want: vec![],
                cids: vec![cid(b"x")],
            }),
            Response::Blobs(vec![(cid(b"a"), Bytes::from_static(b"a"))]),
            Response::PeerList(vec!["t1".into(), "t2".into()]),
            Response::Busy,
            Response::Failed(FailCode::Denied, "no".into()),
        ];
        for r in responses {
            let (kind, body) = r.encode();
            assert!(!kind.is_request());
            assert_eq!(Response::decode(kind, &body).unwrap(), r);
        }
    }

    #[test]
    fn a_blobs_answer_is_sent_and_read_without_copying_its_blobs() {
        let blobs: Vec<(Cid, Bytes)> = [&b"first"[..], b"", b"third blob"]
            .iter()
            .map(|d| (cid(d), Bytes::copy_from_slice(d)))
            .collect();
        let response = Response::Blobs(blobs.clone());
        let (kind, parts) = response.encode_parts();
        // Each blob is sent as the very bytes it was stored in.
        for (_, data) in blobs.iter().filter(|(_, d)| !d.is_empty()) {
            assert!(parts.iter().any(|p| p.as_ptr() == data.as_ptr()));
        }
        let body = Bytes::from(parts.concat());
        assert_eq!(body, Bytes::from(response.encode().1));
        let Response::Blobs(read) = Response::decode_shared(kind, &body).unwrap() else {
            panic!("not blobs");
        };
        assert_eq!(read, blobs);
        // ... and read as slices of the frame's body.
        let range = body.as_ptr_range();
        for (_, data) in read.iter().filter(|(_, d)| !d.is_empty()) {
            assert!(
                range.contains(&data.as_ptr()),
                "a copy, not a slice of the body"
            );
        }
    }

    #[test]
    fn an_undecodable_message_keeps_the_decoders_error_as_its_source() {
        // A reconcile answer: empty negentropy, no ids, one 4-byte "CID" that is not one.
        let body = [0, 0, 1, 4, 0xff, 0xff, 0xff, 0xff];
        let err = Response::decode(Kind::Reconciled, &body).unwrap_err();
        assert_eq!(err.reason, "bad message");
        let source = std::error::Error::source(&err).expect("the decoder's error is kept");
        let message_error = source
            .downcast_ref::<seedbank_discovery::Error>()
            .expect("the message decoder's error");
        let cause = std::error::Error::source(message_error).expect("and its cause");
        assert!(cause.downcast_ref::<cid::Error>().is_some(), "{cause:?}");
    }

    #[test]
    fn forged_counts_are_rejected_before_allocating() {
        // A fetch claiming a million CIDs in 10 bytes.
        let mut body = Vec::new();
        put_len(&mut body, 1_000_000);
        body.extend_from_slice(&[0; 8]);
        assert!(Request::decode(Kind::Fetch, &body).is_err());
        // A reconcile answer claiming 100,000 CIDs.
        let mut body = Vec::new();
        put_len(&mut body, 0);
        put_len(&mut body, 0);
        put_len(&mut body, 100_000);
        body.extend_from_slice(&[1; 64]);
        assert_eq!(
            Response::decode(Kind::Reconciled, &body)
                .unwrap_err()
                .reason,
            "too many CIDs in message"
        );
        // A request must not carry CIDs, an answer no ids.
        let msg = Message {
            cids: vec![cid(b"x")],
            ..Message::default()
        };
        let mut body = Vec::new();
        put_bytes(&mut body, b"name:x");
        body.extend_from_slice(&msg.encode());
        assert!(Request::decode(Kind::Reconcile, &body).is_err());
        let msg = Message {
            want: vec![ItemId([0; 32])],
            ..Message::default()
        };
        assert!(Response::decode(Kind::Reconciled, &msg.encode()).is_err());
        // Tickets and blobs counts.
        let mut body = Vec::new();
        put_len(&mut body, MAX_PEERS + 1);
        body.extend_from_slice(&[0; 100]);
        assert!(Response::decode(Kind::PeerList, &body).is_err());
    }

    #[test]
    fn truncations_and_padding_are_rejected() {
        let (kind, body) = Request::Fetch(vec![cid(b"a")]).encode();
        for cut in 0..body.len() {
            assert!(Request::decode(kind, &body[..cut]).is_err(), "cut {cut}");
        }
        let mut padded = body.clone();
        padded.push(0);
        assert!(Request::decode(kind, &padded).is_err());
        let mut long_scope = Vec::new();
        put_bytes(&mut long_scope, "name:".repeat(300).as_bytes());
        assert!(Request::decode(Kind::Reconcile, &long_scope).is_err());
        assert!(Response::decode(Kind::Reconcile, &[]).is_err());
        assert!(Request::decode(Kind::Busy, &[]).is_err());
    }
}

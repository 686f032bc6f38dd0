//! The reconciliation message exchanged through [`Peer::reconcile`](crate::Peer::reconcile).
//!
//! Wire form (all counts and lengths unsigned LEB128 varints):
//! `len(negentropy) negentropy | count(want) want×32 bytes | count(cids) (len(cid) cid)×`.

use bytes::Bytes;
use cid::Cid;
use unsigned_varint::{decode, encode};

use crate::error::{Error, Result};
use crate::item::ItemId;

/// Largest message [`Message::decode`] accepts (16 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Fewest bytes one CID takes in a message: a length prefix and four bytes (version, codec,
/// multihash code and length, as for an empty identity multihash).
const MIN_CID_BYTES: usize = 5;

/// One reconciliation message, in either direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Negentropy protocol bytes. Empty in a request that only resolves ids, and in the
    /// answer to it.
    pub negentropy: Bytes,
    /// Request only: ids the initiator learned it needs, whose CIDs it asks for (named
    /// scopes; a DAG discovery knows the CIDs it is missing from links).
    pub want: Vec<ItemId>,
    /// Answer only: the CIDs of the requested `want` ids the responder holds.
    pub cids: Vec<Cid>,
}

impl Message {
    /// Size of [`Message::encode`]'s output, in bytes (what a transport would send).
    pub fn encoded_len(&self) -> usize {
        let varint = |n: usize| encode::usize(n, &mut encode::usize_buffer()).len();
        varint(self.negentropy.len())
            + self.negentropy.len()
            + varint(self.want.len())
            + 32 * self.want.len()
            + varint(self.cids.len())
            + self
                .cids
                .iter()
                .map(|c| {
                    let len = c.encoded_len();
                    varint(len) + len
                })
                .sum::<usize>()
    }

    /// Encodes the message for a transport.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.encoded_len());
        put_len(&mut out, self.negentropy.len());
        out.extend_from_slice(&self.negentropy);
        put_len(&mut out, self.want.len());
        for id in &self.want {
            out.extend_from_slice(&id.0);
        }
        put_len(&mut out, self.cids.len());
        for cid in &self.cids {
            let bytes = cid.to_bytes();
            put_len(&mut out, bytes.len());
            out.extend_from_slice(&bytes);
        }
        Bytes::from(out)
    }

    /// Decodes a message produced by [`Message::encode`].
    ///
    /// # Errors
    /// [`Error::Protocol`] for a truncated, oversized or malformed message.
    pub fn decode(bytes: &[u8]) -> Result<Message> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(Error::protocol(format!("message of {} bytes", bytes.len())));
        }
        let mut rest = bytes;
        let len = take_len(&mut rest)?;
        let negentropy = Bytes::copy_from_slice(take(&mut rest, len)?);
        let count = take_len(&mut rest)?;
        let want = take(&mut rest, count.checked_mul(32).ok_or_else(truncated)?)?
            .chunks_exact(32)
            .map(|c| ItemId(c.try_into().expect("32-byte chunk")))
            .collect();
        let count = take_len(&mut rest)?;
        // A peer chose `count`: reserve no more CIDs than the bytes left can hold.
        let mut cids = Vec::with_capacity(count.min(rest.len() / MIN_CID_BYTES));
        for _ in 0..count {
            let len = take_len(&mut rest)?;
            let cid = Cid::try_from(take(&mut rest, len)?)
                .map_err(|e| Error::protocol_caused(None, "bad CID in message", e))?;
            cids.push(cid);
        }
        if !rest.is_empty() {
            return Err(Error::protocol("trailing bytes after message"));
        }
        Ok(Message {
            negentropy,
            want,
            cids,
        })
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(encode::usize(n, &mut encode::usize_buffer()));
}

fn take_len(rest: &mut &[u8]) -> Result<usize> {
    // The varint decoder's error (cut short, too long, not minimal) stays the source; it
    // is a small Copy value, and only a failed decode builds the error.
    let (n, tail) =
        decode::usize(rest).map_err(|e| Error::protocol_caused(None, "truncated message", e))?;
    *rest = tail;
    Ok(n)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if rest.len() < n {
        return Err(truncated());
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn truncated() -> Error {
    Error::protocol("truncated message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedbank_blobstore::{codec, Blob};
    use std::error::Error as _;

    #[test]
    fn a_bad_length_keeps_the_varint_decoders_error_as_its_source() {
        // A varint whose continuation bit promises a byte that never comes.
        let err = Message::decode(&[0x80]).unwrap_err();
        assert_eq!(err.to_string(), "protocol error: truncated message");
        let cause = err.source().expect("the decoder's error is kept");
        assert_eq!(
            cause.downcast_ref::<decode::Error>(),
            Some(&decode::Error::Insufficient)
        );
        // A length written with a needless trailing zero byte is not minimal.
        let err = Message::decode(&[0x81, 0x00]).unwrap_err();
        assert_eq!(
            err.source().and_then(|c| c.downcast_ref::<decode::Error>()),
            Some(&decode::Error::NotMinimal)
        );
    }

    #[test]
    fn messages_round_trip_and_report_their_size() {
        let cid = *Blob::new(codec::RAW, &b"x"[..]).cid();
        let msg = Message {
            negentropy: Bytes::from_static(&[0x61, 1, 2, 3]),
            want: vec![ItemId([9; 32]), ItemId::of(&cid)],
            cids: vec![cid],
        };
        let bytes = msg.encode();
        assert_eq!(bytes.len(), msg.encoded_len());
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
        assert_eq!(Message::default().encoded_len(), 3);
    }

    #[test]
    fn a_forged_count_reserves_nothing_beyond_what_the_bytes_hold() {
        // Empty negentropy, no want, then a count of 2^40 CIDs with 5 bytes behind it.
        let mut bytes = vec![0, 0];
        put_len(&mut bytes, 1 << 40);
        bytes.extend_from_slice(&[4, 1, 0x55, 0, 0, 9]);
        assert!(Message::decode(&bytes).is_err());
        let mut want = vec![0];
        put_len(&mut want, usize::MAX / 16);
        assert!(Message::decode(&want).is_err(), "count × 32 overflows");
    }

    #[test]
    fn a_bad_cid_is_a_protocol_error_caused_by_the_cid_crates_error() {
        // Empty negentropy, no want, one CID of 3 bytes that is not a CID.
        let bytes = [0, 0, 1, 3, 0xff, 0xff, 0xff];
        let err = Message::decode(&bytes).unwrap_err();
        assert!(matches!(&err, Error::Protocol { reason, .. } if reason == "bad CID in message"));
        let source = std::error::Error::source(&err).expect("the CID error is kept");
        assert!(source.downcast_ref::<cid::Error>().is_some(), "{source:?}");
    }

    #[test]
    fn truncated_or_padded_messages_are_rejected() {
        let msg = Message {
            negentropy: Bytes::from_static(&[0x61]),
            want: vec![ItemId([1; 32])],
            cids: Vec::new(),
        };
        let bytes = msg.encode();
        for cut in 0..bytes.len() {
            assert!(Message::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.to_vec();
        padded.push(0);
        assert!(Message::decode(&padded).is_err());
    }
}

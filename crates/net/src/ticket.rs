//! Printable node addresses: a [`Ticket`] is an endpoint id plus its direct addresses.

use std::fmt;
use std::str::FromStr;

use iroh::{EndpointAddr, EndpointId};
use iroh_tickets::endpoint::EndpointTicket;

use crate::protocol::MAX_TICKET_BYTES;

/// How to reach a node: its endpoint id (its ed25519 public key, the identity QUIC's TLS
/// checks) and the addresses it listens on.
///
/// The text form is iroh's endpoint ticket (`endpoint` + base32), so tickets interoperate
/// with iroh tools. Parsing rejects text longer than 1 KiB before decoding it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    addr: EndpointAddr,
}

/// A ticket text that does not parse.
///
/// Unlike the crate's other errors, the message repeats the parser's error: clap shows a
/// bad `--peer` with this `Display` alone, not with its causes.
#[derive(Debug, thiserror::Error)]
#[error("invalid ticket: {reason}")]
pub struct TicketError {
    /// What is wrong.
    reason: String,
    /// iroh's ticket parser's error, when it found the fault.
    #[source]
    source: Option<iroh_tickets::ParseError>,
}

impl Ticket {
    /// The ticket of `addr`.
    pub fn new(addr: EndpointAddr) -> Self {
        Ticket { addr }
    }

    /// The node's endpoint id.
    pub fn id(&self) -> EndpointId {
        self.addr.id
    }

    /// The full address (id and transport addresses).
    pub fn addr(&self) -> &EndpointAddr {
        &self.addr
    }
}

impl From<EndpointAddr> for Ticket {
    fn from(addr: EndpointAddr) -> Self {
        Ticket::new(addr)
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&EndpointTicket::new(self.addr.clone()), f)
    }
}

impl FromStr for Ticket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > MAX_TICKET_BYTES {
            return Err(TicketError {
                reason: format!("{} bytes, over the {MAX_TICKET_BYTES}-byte cap", s.len()),
                source: None,
            });
        }
        let ticket: EndpointTicket =
            s.parse()
                .map_err(|e: iroh_tickets::ParseError| TicketError {
                    reason: e.to_string(),
                    source: Some(e),
                })?;
        Ok(Ticket::new(ticket.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::SecretKey;

    #[test]
    fn tickets_round_trip_and_reject_junk() {
        let id = SecretKey::from_bytes(&[7; 32]).public();
        let addr = EndpointAddr::new(id).with_ip_addr("127.0.0.1:4433".parse().unwrap());
        let ticket = Ticket::new(addr.clone());
        let text = ticket.to_string();
        let back: Ticket = text.parse().unwrap();
        assert_eq!(back, ticket);
        assert_eq!(back.id(), id);
        assert_eq!(back.addr(), &addr);
        let junk = "endpointxyz".parse::<Ticket>().unwrap_err();
        let cause = std::error::Error::source(&junk).expect("iroh's parse error is kept");
        assert!(cause.downcast_ref::<iroh_tickets::ParseError>().is_some());
        assert!("".parse::<Ticket>().is_err());
        assert!("a".repeat(5000).parse::<Ticket>().is_err());
    }
}

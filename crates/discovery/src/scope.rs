//! What discovery looks for: a named scope of the index, or everything reachable from a root.

use std::fmt;
use std::str::FromStr;

use cid::Cid;

/// The unit of discovery, of haves snapshots and of reconciliation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A named scope of the index ([`Index::scope_members`](seedbank_index::Index::scope_members)).
    /// Complete once a reconciliation with a peer leaves nothing to fetch.
    Named(String),
    /// Every block reachable from a root. Complete once
    /// [`Index::missing`](seedbank_index::Index::missing) of the root is empty.
    Dag(Cid),
}

impl Scope {
    /// A named scope.
    pub fn named(name: impl Into<String>) -> Self {
        Scope::Named(name.into())
    }

    /// The DAG under `root`.
    pub fn dag(root: Cid) -> Self {
        Scope::Dag(root)
    }
}

/// `name:<scope name>` or `dag:<root CID>`, as [`FromStr`] reads it.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Named(name) => write!(f, "name:{name}"),
            Scope::Dag(root) => write!(f, "dag:{root}"),
        }
    }
}

/// Why a text is not a [`Scope`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseScopeError {
    /// Neither `name:` nor `dag:` starts it.
    #[error("scope {0:?} is neither name:<name> nor dag:<cid>")]
    UnknownKind(String),
    /// `dag:` is followed by something that is not a CID.
    #[error("bad root CID in scope")]
    BadRoot(#[source] cid::Error),
}

/// Parses `name:<scope name>` or `dag:<root CID>`.
impl FromStr for Scope {
    type Err = ParseScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(name) = s.strip_prefix("name:") {
            return Ok(Scope::named(name));
        }
        if let Some(root) = s.strip_prefix("dag:") {
            let root = root.parse().map_err(ParseScopeError::BadRoot)?;
            return Ok(Scope::Dag(root));
        }
        Err(ParseScopeError::UnknownKind(s.to_string()))
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedbank_blobstore::{codec, Blob};

    #[test]
    fn scopes_round_trip_through_their_text_form() {
        let root = *Blob::new(codec::RAW, &b"root"[..]).cid();
        for scope in [Scope::named("doc:1"), Scope::named(""), Scope::dag(root)] {
            assert_eq!(scope.to_string().parse::<Scope>().unwrap(), scope);
        }
        assert!(matches!(
            "other:x".parse::<Scope>(),
            Err(ParseScopeError::UnknownKind(s)) if s == "other:x"
        ));
        assert!(matches!(
            "dag:not-a-cid".parse::<Scope>(),
            Err(ParseScopeError::BadRoot(_))
        ));
    }
}

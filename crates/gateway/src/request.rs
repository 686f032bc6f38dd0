//! What a request asks for: the content path, the response format (from `?format=` or
//! `Accept`, the query taking precedence), the CAR parameters, and byte ranges. Nothing
//! here allocates more than the request's own (size-limited) bytes.

use cid::Cid;
use percent_encoding::percent_decode_str;

/// Most `Accept` entries looked at.
const MAX_ACCEPT_ENTRIES: usize = 32;

/// A request that cannot be served as asked, with its status.
#[derive(Debug)]
pub(crate) struct Reject {
    pub status: http::StatusCode,
    pub message: String,
}

impl Reject {
    pub fn bad(message: impl Into<String>) -> Self {
        Reject {
            status: http::StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Reject {
            status: http::StatusCode::NOT_ACCEPTABLE,
            message: message.into(),
        }
    }
}

/// `/ipfs/{cid}[/{path}]`, decoded.
#[derive(Debug)]
pub(crate) struct ContentPath {
    pub root: Cid,
    /// Percent-decoded names; empty and `.` steps dropped.
    pub segments: Vec<String>,
    /// The URL path ended with `/`.
    pub trailing_slash: bool,
}

/// Parses the part of a URL path after `/ipfs/` (still percent-encoded).
pub(crate) fn parse_path(rest: &str, max_segments: usize) -> Result<ContentPath, Reject> {
    let mut parts = rest.split('/');
    let first = parts.next().unwrap_or_default();
    // Text, not a source: a rejection is the body of a 400 answer to an HTTP client.
    let root = Cid::try_from(first)
        .map_err(|e| Reject::bad(format!("invalid CID {first:?} in the path: {e}")))?;
    let mut segments = Vec::new();
    for raw in parts {
        let seg = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Reject::bad("a path segment is not UTF-8 once decoded"))?;
        match &*seg {
            "" | "." => continue,
            ".." => return Err(Reject::bad("`..` is not allowed in a content path")),
            s if s.contains('/') => return Err(Reject::bad("a path segment holds an encoded `/`")),
            _ => {}
        }
        if segments.len() >= max_segments {
            return Err(Reject::bad(format!(
                "the path has more than {max_segments} segments"
            )));
        }
        segments.push(seg.into_owned());
    }
    Ok(ContentPath {
        root,
        segments,
        trailing_slash: rest.ends_with('/') && rest.contains('/'),
    })
}

/// How much of the DAG at the end of the path a CAR carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The terminus block only.
    Block,
    /// What is needed to read the entity: a whole file (or the range of it), a directory's
    /// node (all shards of a HAMT), a non-UnixFS block alone.
    Entity,
    /// The terminus and everything it links to, recursively.
    All,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Block => "block",
            Scope::Entity => "entity",
            Scope::All => "all",
        }
    }
}

/// `entity-bytes=from:to`: offsets may be negative (from the end); `to = None` is `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntityBytes {
    pub from: i64,
    pub to: Option<i64>,
}

impl EntityBytes {
    /// The inclusive byte range `[first, last]` of a `size`-byte entity this names, or
    /// `None` when it is empty or wholly outside the entity.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        let size = i128::from(size);
        let abs = |v: i64| {
            let v = i128::from(v);
            if v < 0 {
                size + v
            } else {
                v
            }
        };
        let first = abs(self.from).max(0);
        let last = match self.to {
            None => size - 1,
            Some(to) => abs(to).min(size - 1),
        };
        if size == 0 || first > last || first >= size || last < 0 {
            return None;
        }
        Some((u64::try_from(first).ok()?, u64::try_from(last).ok()?))
    }

    fn parse(s: &str) -> Result<Self, Reject> {
        let bad = || Reject::bad(format!("invalid entity-bytes {s:?} (want from:to)"));
        let (from, to) = s.split_once(':').ok_or_else(bad)?;
        let from: i64 = from.parse().map_err(|_| bad())?;
        let to = match to {
            "*" => None,
            t => Some(t.parse::<i64>().map_err(|_| bad())?),
        };
        if let Some(to) = to {
            if from >= 0 && to >= 0 && from > to {
                return Err(Reject::bad(format!(
                    "invalid entity-bytes {s:?}: from is past to"
                )));
            }
        }
        Ok(EntityBytes { from, to })
    }
}

/// The CAR variant asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CarRequest {
    pub scope: Scope,
    pub entity_bytes: Option<EntityBytes>,
    /// Send a block every time the walk meets it (`dups=y`), or once (`dups=n`).
    pub dups: bool,
}

/// The response format chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Raw,
    Car(CarRequest),
    /// The file's bytes, a directory listing, or a block with its codec's type.
    Deserialized,
}

/// The query parameters this gateway reads.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub format: Option<String>,
    pub dag_scope: Option<String>,
    pub entity_bytes: Option<String>,
    pub car_version: Option<String>,
    pub car_order: Option<String>,
    pub car_dups: Option<String>,
    pub filename: Option<String>,
    pub download: Option<String>,
}

impl Query {
    /// Parses a raw query string (first occurrence of each key wins).
    pub fn parse(query: Option<&str>) -> Query {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match &*k {
                "format" => &mut q.format,
                "dag-scope" => &mut q.dag_scope,
                "entity-bytes" => &mut q.entity_bytes,
                "car-version" => &mut q.car_version,
                "car-order" => &mut q.car_order,
                "car-dups" => &mut q.car_dups,
                "filename" => &mut q.filename,
                "download" => &mut q.download,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.into_owned());
            }
        }
        q
    }
}

/// One entry of an `Accept` header.
#[derive(Debug)]
struct MediaRange {
    mime: String,
    params: Vec<(String, String)>,
    q: f32,
}

fn parse_accept(header: &str) -> Vec<MediaRange> {
    let mut out: Vec<MediaRange> = header
        .split(',')
        .take(MAX_ACCEPT_ENTRIES)
        .filter_map(|entry| {
            let mut parts = entry.split(';');
            let mime = parts.next()?.trim().to_ascii_lowercase();
            if mime.is_empty() {
                return None;
            }
            let mut params = Vec::new();
            let mut q = 1.0f32;
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().trim_matches('"').to_string();
                if k == "q" {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(MediaRange { mime, params, q })
        })
        .filter(|m| m.q > 0.0)
        .collect();
    // Stable: equal weights keep the client's order.
    out.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal));
    out
}

/// Formats this gateway knows of but does not serve (406, not 400).
const KNOWN_UNSUPPORTED_FORMATS: [&str; 6] =
    ["tar", "dag-json", "dag-cbor", "json", "cbor", "ipns-record"];

/// Media types of those formats.
const UNSUPPORTED_TYPES: [&str; 6] = [
    "application/x-tar",
    "application/vnd.ipld.dag-json",
    "application/vnd.ipld.dag-cbor",
    "application/json",
    "application/cbor",
    "application/vnd.ipfs.ipns-record",
];

/// The negotiated format, and whether it came from `Accept` alone (then the response
/// carries a `Content-Location` with the `format` parameter).
pub(crate) fn negotiate(
    query: &Query,
    accept: Option<&str>,
    deserialized: bool,
) -> Result<(Format, bool), Reject> {
    let ranges = accept.map(parse_accept).unwrap_or_default();
    // CAR parameters from the first acceptable CAR entry of Accept, if any.
    let mut car_from_accept: Option<Result<CarParams, Reject>> = None;
    for m in ranges
        .iter()
        .filter(|m| m.mime == "application/vnd.ipld.car")
    {
        let p = CarParams::from_accept(&m.params);
        let ok = p.is_ok();
        if car_from_accept.as_ref().is_none_or(|c| c.is_err()) {
            car_from_accept = Some(p);
        }
        if ok {
            break;
        }
    }
    if let Some(format) = query.format.as_deref() {
        return match format {
            "raw" => Ok((Format::Raw, false)),
            "car" => {
                let base = match car_from_accept {
                    Some(Ok(p)) => p,
                    _ => CarParams::default(),
                };
                Ok((Format::Car(base.finish(query)?), false))
            }
            f if KNOWN_UNSUPPORTED_FORMATS.contains(&f) => Err(Reject::not_acceptable(format!(
                "format={f} is not served by this trustless gateway (raw and car are)"
            ))),
            f => Err(Reject::bad(format!("unknown format {f:?}"))),
        };
    }
    let mut refused_car = None;
    for m in &ranges {
        match m.mime.as_str() {
            "application/vnd.ipld.raw" => return Ok((Format::Raw, true)),
            "application/vnd.ipld.car" => match CarParams::from_accept(&m.params) {
                Ok(p) => return Ok((Format::Car(p.finish(query)?), true)),
                Err(e) => refused_car = Some(e),
            },
            t if UNSUPPORTED_TYPES.contains(&t) => {}
            _ if deserialized => return Ok((Format::Deserialized, false)),
            _ => {}
        }
    }
    if let Some(e) = refused_car {
        return Err(e);
    }
    let generic = ranges
        .iter()
        .all(|m| !UNSUPPORTED_TYPES.contains(&m.mime.as_str()));
    if generic {
        return if deserialized {
            Ok((Format::Deserialized, false))
        } else {
            Err(Reject::bad(
                "this gateway serves verifiable responses only: ask for \
                 application/vnd.ipld.raw or application/vnd.ipld.car (or ?format=raw|car)",
            ))
        };
    }
    Err(Reject::not_acceptable(
        "none of the accepted types is served here (application/vnd.ipld.raw, \
         application/vnd.ipld.car; version=1; order=dfs; dups=y|n, or file bytes)",
    ))
}

/// CAR content type parameters (`version`, `order`, `dups`).
#[derive(Clone, Copy, Debug, Default)]
struct CarParams {
    dups: Option<bool>,
}

impl CarParams {
    fn from_accept(params: &[(String, String)]) -> Result<CarParams, Reject> {
        let mut out = CarParams::default();
        for (k, v) in params {
            out.apply(k, v, Reject::not_acceptable)?;
        }
        Ok(out)
    }

    fn apply(&mut self, k: &str, v: &str, reject: fn(String) -> Reject) -> Result<(), Reject> {
        match (k, v) {
            ("version", "1") => {}
            ("version", v) => return Err(reject(format!("CAR version {v} (only 1 is served)"))),
            // `unk` lets the gateway choose: it answers with its order, dfs.
            ("order", "dfs" | "unk") => {}
            ("order", v) => return Err(reject(format!("CAR order {v} (only dfs is served)"))),
            ("dups", "y") => self.dups = Some(true),
            ("dups", "n") => self.dups = Some(false),
            ("dups", v) => return Err(reject(format!("CAR dups={v} (y or n)"))),
            _ => {}
        }
        Ok(())
    }

    /// Applies the `car-*` query parameters (they take precedence) and the DAG scope.
    fn finish(mut self, query: &Query) -> Result<CarRequest, Reject> {
        for (k, v) in [
            ("version", &query.car_version),
            ("order", &query.car_order),
            ("dups", &query.car_dups),
        ] {
            if let Some(v) = v {
                self.apply(k, v, Reject::bad)?;
            }
        }
        let entity_bytes = query
            .entity_bytes
            .as_deref()
            .map(EntityBytes::parse)
            .transpose()?;
        let scope = match query.dag_scope.as_deref() {
            None | Some("all") if entity_bytes.is_some() => Scope::Entity,
            None | Some("all") => Scope::All,
            Some("entity") => Scope::Entity,
            Some("block") => Scope::Block,
            Some(s) => return Err(Reject::bad(format!("unknown dag-scope {s:?}"))),
        };
        Ok(CarRequest {
            scope,
            entity_bytes,
            dups: self.dups.unwrap_or(false),
        })
    }
}

/// A single byte range of a `Range` header (only the first of several is served).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// `first-[last]`.
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// Parses `bytes=...`; `None` for a header that is not a valid byte range (then it is
/// ignored, as RFC 9110 says).
pub(crate) fn parse_range(header: &str) -> Option<ByteRange> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (a, b) = first.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Some(ByteRange::Suffix(b.parse().ok()?));
    }
    let a: u64 = a.parse().ok()?;
    let b = if b.is_empty() {
        None
    } else {
        Some(b.parse::<u64>().ok()?)
    };
    if b.is_some_and(|b| b < a) {
        return None;
    }
    Some(ByteRange::From(a, b))
}

impl ByteRange {
    /// `[first, last]` of a `size`-byte body, or `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::From(a, _) if a >= size => None,
            ByteRange::From(a, b) => Some((a, b.map_or(size - 1, |b| b.min(size - 1)))),
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(_) if size == 0 => None,
            ByteRange::Suffix(n) => Some((size - n.min(size), size - 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car(query: &str, accept: Option<&str>) -> Result<(Format, bool), Reject> {
        negotiate(&Query::parse(Some(query)), accept, true)
    }

    #[test]
    fn entity_bytes_resolve_as_the_spec_says() {
        let eb = |from, to| EntityBytes { from, to };
        assert_eq!(eb(0, None).resolve(1026), Some((0, 1025)));
        assert_eq!(eb(512, Some(-256)).resolve(1026), Some((512, 770)));
        assert_eq!(eb(-5, None).resolve(1026), Some((1021, 1025)));
        assert_eq!(eb(-9999, None).resolve(1026), Some((0, 1025)));
        assert_eq!(eb(-9999, Some(-3)).resolve(1026), Some((0, 1023)));
        assert_eq!(eb(0, Some(0)).resolve(1026), Some((0, 0)));
        assert_eq!(eb(0, Some(5000)).resolve(1026), Some((0, 1025)));
        assert_eq!(eb(2000, None).resolve(1026), None);
        assert_eq!(eb(0, Some(-2000)).resolve(1026), None);
        assert_eq!(eb(0, None).resolve(0), None);
        assert_eq!(eb(i64::MIN, Some(i64::MAX)).resolve(10), Some((0, 9)));
        assert!(EntityBytes::parse("5:1").is_err());
        assert!(EntityBytes::parse("a:1").is_err());
        assert!(EntityBytes::parse("1").is_err());
        assert_eq!(EntityBytes::parse("-5:*").unwrap(), eb(-5, None));
    }

    #[test]
    fn format_wins_over_accept_and_car_params_come_from_both() {
        let accept_dups = Some("application/vnd.ipld.car; version=1; order=dfs; dups=y");
        let Ok((Format::Car(c), from_accept)) = car("format=car", accept_dups) else {
            panic!()
        };
        assert!(c.dups && !from_accept && c.scope == Scope::All);
        let Ok((Format::Car(c), _)) = car("format=car&car-dups=n", accept_dups) else {
            panic!()
        };
        assert!(!c.dups);
        assert!(matches!(
            car("format=raw", Some("application/vnd.ipld.car")),
            Ok((Format::Raw, false))
        ));
        assert!(matches!(
            car("", Some("application/vnd.ipld.raw")),
            Ok((Format::Raw, true))
        ));
        assert!(matches!(car("", None), Ok((Format::Deserialized, false))));
        assert!(matches!(
            car("", Some("text/html,*/*;q=0.8")),
            Ok((Format::Deserialized, false))
        ));
        let status = |r: Result<(Format, bool), Reject>| r.unwrap_err().status.as_u16();
        assert_eq!(status(car("format=nope", None)), 400);
        assert_eq!(status(car("format=tar", None)), 406);
        assert_eq!(status(car("", Some("application/vnd.ipld.dag-json"))), 406);
        assert_eq!(
            status(car("", Some("application/vnd.ipld.car; version=2"))),
            406
        );
        assert_eq!(status(car("format=car&car-version=2", None)), 400);
        assert_eq!(status(car("format=car&dag-scope=most", None)), 400);
        assert_eq!(status(car("format=car&entity-bytes=9:1", None)), 400);
        let Ok((Format::Car(c), _)) = car("format=car&entity-bytes=0:*", None) else {
            panic!()
        };
        assert_eq!(c.scope, Scope::Entity);
        assert!(negotiate(&Query::default(), None, false).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9"), Some(ByteRange::From(0, Some(9))));
        assert_eq!(parse_range("bytes=5-"), Some(ByteRange::From(5, None)));
        assert_eq!(parse_range("bytes=-3"), Some(ByteRange::Suffix(3)));
        assert_eq!(
            parse_range("bytes=1-2,5-6"),
            Some(ByteRange::From(1, Some(2)))
        );
        assert_eq!(parse_range("bytes=9-1"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(ByteRange::From(0, Some(99)).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::From(10, None).resolve(10), None);
        assert_eq!(ByteRange::Suffix(30).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some((7, 9)));
    }

    #[test]
    fn paths() {
        let cid = "bafkqaaa";
        let p = parse_path(&format!("{cid}/a%20b//./c/"), 8).unwrap();
        assert_eq!(p.segments, vec!["a b", "c"]);
        assert!(p.trailing_slash);
        assert!(!parse_path(cid, 8).unwrap().trailing_slash);
        assert!(parse_path(&format!("{cid}/../x"), 8).is_err());
        assert!(parse_path(&format!("{cid}/a%2Fb"), 8).is_err());
        assert!(parse_path("notacid/x", 8).is_err());
        assert!(parse_path(&format!("{cid}/a/b/c"), 2).is_err());
    }
}

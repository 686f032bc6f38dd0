//! The parts of an answer every route shares: the gateway's headers and error bodies, the
//! request context, byte responses with ranges, and how store and resolve errors read.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cid::Cid;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use crate::request::{self, ByteRange, ContentPath, Query, Reject};
use crate::resolve::ResolveError;
use crate::Inner;

/// `Cache-Control` of every successful `/ipfs/` response: the content never changes.
pub(crate) const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// `X-Ipfs-Path`.
pub(crate) const X_IPFS_PATH: HeaderName = HeaderName::from_static("x-ipfs-path");
/// `X-Ipfs-Roots`.
pub(crate) const X_IPFS_ROOTS: HeaderName = HeaderName::from_static("x-ipfs-roots");

/// A plain-text error response.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut msg = message.into();
    msg.push('\n');
    let mut resp = (status, msg).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

/// A header value from text that may hold anything (never panics; bad bytes dropped).
pub(crate) fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| {
        let clean: String = s
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static(""))
    })
}

/// What every answer about one request shares.
pub(crate) struct Ctx {
    pub inner: Arc<Inner>,
    pub head: bool,
    pub headers: HeaderMap,
    /// The path as requested (still percent-encoded), for `X-Ipfs-Path` and redirects.
    pub raw_path: String,
    pub raw_query: Option<String>,
    pub query: Query,
    pub path: ContentPath,
}

impl Ctx {
    /// Headers of a successful response.
    pub fn success_headers(&self, h: &mut HeaderMap, etag: &str, roots: &[Cid]) {
        h.insert(header::ETAG, value(etag));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(X_IPFS_PATH, value(&self.raw_path));
        let roots: Vec<String> = roots.iter().map(Cid::to_string).collect();
        h.insert(X_IPFS_ROOTS, value(&roots.join(",")));
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }

    /// `Content-Location` naming the format, for an answer negotiated through `Accept`.
    pub(crate) fn content_location(&self, h: &mut HeaderMap, format: &str) {
        let query = match self.raw_query.as_deref() {
            Some(q) if !q.is_empty() => format!("{q}&format={format}"),
            _ => format!("format={format}"),
        };
        h.insert(
            header::CONTENT_LOCATION,
            value(&format!("{}?{query}", self.raw_path)),
        );
    }

    /// True when `If-None-Match` names `etag` (or `*`).
    pub fn not_modified(&self, etag: &str) -> bool {
        let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
        self.headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == "*" || bare(t) == bare(etag))
    }

    /// A 304 for `etag`.
    pub fn respond_not_modified(&self, etag: &str, roots: &[Cid]) -> Response {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        self.success_headers(resp.headers_mut(), etag, roots);
        resp
    }

    /// `Content-Disposition` for `filename` (the `?filename=` parameter wins), `inline`
    /// unless `attachment` or `?download=true`.
    pub fn disposition(&self, h: &mut HeaderMap, default_name: Option<&str>, attachment: bool) {
        let attachment = attachment || self.query.download.as_deref() == Some("true");
        let name = self.query.filename.as_deref().or(default_name);
        let kind = if attachment { "attachment" } else { "inline" };
        let v = match name {
            None if !attachment => return,
            None => kind.to_string(),
            Some(name) => {
                let ascii: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                if ascii == name {
                    format!("{kind}; filename=\"{ascii}\"")
                } else {
                    let utf8 = percent_encoding::utf8_percent_encode(
                        name,
                        percent_encoding::NON_ALPHANUMERIC,
                    );
                    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{utf8}")
                }
            }
        };
        h.insert(header::CONTENT_DISPOSITION, value(&v));
    }

    /// The request's `Range`, if it applies (an `If-Range` that does not match `etag`
    /// turns it off).
    pub fn range(&self, etag: &str) -> Option<ByteRange> {
        if let Some(if_range) = self.headers.get(header::IF_RANGE) {
            if if_range.to_str().ok().map(str::trim) != Some(etag) {
                return None;
            }
        }
        self.headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(request::parse_range)
    }
}

/// Maps a resolution failure to its status.
pub(crate) fn resolve_error(e: ResolveError, only_if_cached: bool) -> Response {
    match e {
        ResolveError::RootMissing(cid) if only_if_cached => error(
            StatusCode::PRECONDITION_FAILED,
            format!("{cid} is not stored here"),
        ),
        ResolveError::RootMissing(cid) => {
            error(StatusCode::NOT_FOUND, format!("{cid} is not stored here"))
        }
        ResolveError::Missing(cid) => error(
            StatusCode::NOT_FOUND,
            format!("block {cid} on the path is not stored here"),
        ),
        ResolveError::NoSuchPath(msg) => error(StatusCode::NOT_FOUND, msg),
        ResolveError::NotALink(msg) => error(StatusCode::NOT_IMPLEMENTED, msg),
        ResolveError::Store(e) => store_error(e),
    }
}

/// A store failure: the store is closed or failing, not the content's fault.
pub(crate) fn store_error(e: seedbank_blobstore::Error) -> Response {
    tracing::warn!("gateway read failed: {e}");
    let mut resp = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store cannot be read right now",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

/// Bytes in memory as a 200, or a 206/416 for `range`; no body for `HEAD`.
pub(crate) fn bytes_response(ctx: &Ctx, data: Bytes, range: Option<ByteRange>) -> Response {
    let size = data.len() as u64;
    let (status, body) = match range.map(|r| r.resolve(size)) {
        None => (StatusCode::OK, data),
        Some(None) => return unsatisfiable(size),
        Some(Some((first, last))) => (
            StatusCode::PARTIAL_CONTENT,
            data.slice(first as usize..=last as usize),
        ),
    };
    let len = body.len();
    let mut resp = if ctx.head {
        let mut r = Response::new(Body::empty());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        r
    } else {
        Response::new(Body::from(body))
    };
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(Some((first, last))) = range.map(|r| r.resolve(size)) {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {first}-{last}/{size}")),
        );
    }
    resp
}

/// 416 with the size.
pub(crate) fn unsatisfiable(size: u64) -> Response {
    let mut resp = error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        format!("the range is outside the {size} bytes"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
    resp
}

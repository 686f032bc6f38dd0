//! One `/ipfs/` request: parse, negotiate, resolve, then answer with a raw block, a CAR
//! stream or the deserialized content, with the headers the gateway specs ask for.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};

use crate::car::{self, CarJob};
use crate::request::{self, Format, Query};
use crate::resolve::{self, Resolved};
use crate::response::{bytes_response, error, resolve_error, value, Ctx};
use crate::{deserialized, Inner};

/// `GET`/`HEAD /ipfs/{cid}[/{path}]`.
pub(crate) async fn ipfs(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let limit = inner.config.request_timeout;
    match tokio::time::timeout(limit, handle(inner, req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let mut resp = error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("no answer within {} s", limit.as_secs()),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            resp
        }
    }
}

async fn handle(inner: Arc<Inner>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let raw_path = parts.uri.path().to_string();
    if raw_path.len() > inner.config.max_path_bytes {
        return error(
            StatusCode::URI_TOO_LONG,
            format!("paths are limited to {} bytes", inner.config.max_path_bytes),
        );
    }
    if parts
        .headers
        .get("service-worker")
        .is_some_and(|v| v.as_bytes() == b"script")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "registering a service worker is not allowed here",
        );
    }
    let rest = raw_path.strip_prefix("/ipfs/").unwrap_or_default();
    let path = match request::parse_path(rest, inner.config.max_path_segments) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let raw_query = parts.uri.query().map(str::to_string);
    let query = Query::parse(raw_query.as_deref());
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let (format, from_accept) =
        match request::negotiate(&query, accept, inner.config.deserialized_responses) {
            Ok(f) => f,
            Err(r) => return r.into_response(),
        };
    let only_if_cached = parts
        .headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("only-if-cached"));
    let ctx = Ctx {
        head: parts.method == Method::HEAD,
        headers: parts.headers,
        raw_path,
        raw_query,
        query,
        path,
        inner,
    };
    let resolved =
        match resolve::resolve(ctx.inner.index.store(), &ctx.path.root, &ctx.path.segments).await {
            Ok(r) => r,
            Err(e) => return resolve_error(e, only_if_cached),
        };
    match format {
        Format::Raw => raw(&ctx, resolved, from_accept),
        Format::Car(req) => car_response(&ctx, resolved, req, from_accept).await,
        Format::Deserialized => deserialized::respond(&ctx, resolved).await,
    }
}

/// A block as `application/vnd.ipld.raw` (a `Range` of it too).
fn raw(ctx: &Ctx, resolved: Resolved, from_accept: bool) -> Response {
    let cid = resolved.terminus;
    let etag = format!("\"{cid}.raw\"");
    if ctx.not_modified(&etag) {
        return ctx.respond_not_modified(&etag, &resolved.roots);
    }
    let name = format!("{cid}.bin");
    let range = ctx.range(&etag);
    let mut resp = bytes_response(ctx, resolved.block, range);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.ipld.raw"),
    );
    ctx.success_headers(h, &etag, &resolved.roots);
    ctx.disposition(h, Some(&name), true);
    if from_accept {
        ctx.content_location(h, "raw");
    }
    resp
}

/// A CAR stream of the path's blocks and the terminus's DAG.
async fn car_response(
    ctx: &Ctx,
    resolved: Resolved,
    req: request::CarRequest,
    from_accept: bool,
) -> Response {
    let cfg = &ctx.inner.config;
    let mode = match car::terminus_mode(&req, &resolved.terminus, &resolved.block) {
        Ok(m) => m,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let dups = if req.dups { "y" } else { "n" };
    let etag = {
        let mut h = blake3::Hasher::new();
        h.update(ctx.path.segments.join("/").as_bytes());
        h.update(b"\0");
        h.update(req.scope.name().as_bytes());
        if let Some(eb) = req.entity_bytes {
            h.update(format!("\0{}:{:?}", eb.from, eb.to).as_bytes());
        }
        h.update(format!("\0v1\0dfs\0{dups}").as_bytes());
        let digest = h.finalize();
        let mut hex = String::with_capacity(16);
        for b in &digest.as_bytes()[..8] {
            hex.push_str(&format!("{b:02x}"));
        }
        format!("\"{}.car.{hex}\"", ctx.path.root)
    };
    if ctx.not_modified(&etag) {
        return ctx.respond_not_modified(&etag, &resolved.roots);
    }
    let content_type = format!("application/vnd.ipld.car; version=1; order=dfs; dups={dups}");
    let mut resp = if ctx.head {
        Response::new(Body::empty())
    } else {
        let job = CarJob {
            store: ctx.inner.index.store().clone(),
            header_root: ctx.path.root,
            path_blocks: resolved.path_blocks,
            terminus: resolved.terminus,
            terminus_block: resolved.block,
            mode,
            dups: req.dups,
            fetch_budget: cfg.fetch_budget_bytes,
            max_dedup: cfg.max_dedup_blocks,
            max_depth: cfg.max_dag_depth,
        };
        Response::new(crate::body::spawn(
            cfg.stall_timeout,
            cfg.max_response_time,
            move |sink| car::produce(job, sink),
        ))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, value(&content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    ctx.success_headers(h, &etag, &resolved.roots);
    let name = format!("{}.car", ctx.path.root);
    ctx.disposition(h, Some(&name), true);
    if from_accept {
        ctx.content_location(h, "car");
    }
    resp
}

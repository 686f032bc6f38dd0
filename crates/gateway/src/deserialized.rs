//! Deserialized responses, for local apps and browsers: a UnixFS file's bytes with a
//! sniffed `Content-Type` and `Range` support (so a page can show an image or seek in a
//! video), a directory's `index.html` or a listing, and other blocks with their codec's
//! type.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cid::Cid;
use http::header::{self, HeaderValue};
use http::StatusCode;
use seedbank_files::{Error as FilesError, FileReader, Files};

use crate::resolve::{self, Resolved};
use crate::response::{self, error, value, Ctx};
use crate::unixfs::{self, DataType, Node, PbUnixfs};

/// Bytes looked at to sniff a type.
const SNIFF_BYTES: usize = 512;

/// Answers a resolved path with its content.
pub(crate) async fn respond(ctx: &Ctx, resolved: Resolved) -> Response {
    let node = Node::decode(&resolved.terminus, &resolved.block);
    if node.file_size().is_some() {
        let name = ctx.path.segments.last().cloned();
        return file(ctx, &resolved.terminus, &resolved.roots, name.as_deref()).await;
    }
    match node.kind() {
        Some(DataType::Directory | DataType::HamtShard) => directory(ctx, resolved).await,
        Some(DataType::Symlink) => error(
            StatusCode::NOT_IMPLEMENTED,
            "symbolic links are not followed (ask for ?format=raw)",
        ),
        Some(_) => error(
            StatusCode::NOT_IMPLEMENTED,
            "this UnixFS node has no deserialized form (ask for ?format=raw)",
        ),
        None => block(ctx, resolved),
    }
}

/// A non-UnixFS block with its codec's media type.
fn block(ctx: &Ctx, resolved: Resolved) -> Response {
    let cid = resolved.terminus;
    let content_type = match cid.codec() {
        0x71 => "application/vnd.ipld.dag-cbor",
        0x0129 => "application/vnd.ipld.dag-json",
        0x0200 => "application/json",
        0x51 => "application/cbor",
        _ => "application/octet-stream",
    };
    let etag = format!("\"{cid}\"");
    if ctx.not_modified(&etag) {
        return ctx.respond_not_modified(&etag, &resolved.roots);
    }
    let range = ctx.range(&etag);
    let mut resp = response::bytes_response(ctx, resolved.block, range);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    ctx.success_headers(h, &etag, &resolved.roots);
    ctx.disposition(h, None, false);
    resp
}

fn files_error(e: FilesError) -> Response {
    match e {
        FilesError::MissingBlock { cid } => error(
            StatusCode::NOT_FOUND,
            format!("block {cid} of the file is not stored here"),
        ),
        FilesError::RangeNotSatisfiable { size, .. } => response::unsatisfiable(size),
        FilesError::Read { source, .. } => match *source {
            seedbank_blobstore::Error::Corrupt { cid } => error(
                StatusCode::NOT_FOUND,
                format!("block {cid} of the file is not available"),
            ),
            other => response::store_error(other),
        },
        other => error(
            StatusCode::BAD_GATEWAY,
            format!("cannot read the file: {other}"),
        ),
    }
}

/// The type of a file named `name` (by its extension), else of its first bytes.
fn sniff(name: Option<&str>, head: &[u8]) -> String {
    if let Some(guess) = name.and_then(|n| mime_guess::from_path(n).first_raw()) {
        return if guess.starts_with("text/") {
            format!("{guess}; charset=utf-8")
        } else {
            guess.to_string()
        };
    }
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        // A multi-byte character cut at the end of the sample is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    match text {
        Some(t) if !t.contains('\0') => {
            let start = t.trim_start().to_ascii_lowercase();
            if start.starts_with("<svg") || (start.starts_with("<?xml") && start.contains("<svg")) {
                "image/svg+xml".to_string()
            } else if start.starts_with("<!doctype html") || start.starts_with("<html") {
                "text/html; charset=utf-8".to_string()
            } else {
                "text/plain; charset=utf-8".to_string()
            }
        }
        _ => "application/octet-stream".to_string(),
    }
}

/// A UnixFS file: whole (200) or a `Range` (206), streamed.
pub(crate) async fn file(ctx: &Ctx, cid: &Cid, roots: &[Cid], name: Option<&str>) -> Response {
    let etag = format!("\"{cid}\"");
    if ctx.not_modified(&etag) {
        return ctx.respond_not_modified(&etag, roots);
    }
    let files = Files::new(ctx.inner.index.clone());
    let name = ctx.query.filename.as_deref().or(name);
    let by_name = name.and_then(|n| mime_guess::from_path(n).first_raw());
    // The first bytes: for sniffing, and the start of the body when it starts at 0.
    let mut reader = match files.cat(cid, 0, None).await {
        Ok(r) => r,
        Err(e) => return files_error(e),
    };
    let size = reader.file_size();
    let range = match ctx.range(&etag).map(|r| r.resolve(size)) {
        None => None,
        Some(None) => return response::unsatisfiable(size),
        Some(Some(r)) => Some(r),
    };
    let (first, last) = range.unwrap_or((0, size.saturating_sub(1)));
    let mut head = None;
    if by_name.is_none() || first == 0 {
        head = match reader.next_chunk().await {
            Ok(c) => c,
            Err(e) => return files_error(e),
        };
    }
    let content_type = sniff(
        name,
        head.as_deref()
            .map(|h| &h[..h.len().min(SNIFF_BYTES)])
            .unwrap_or_default(),
    );
    let len = if size == 0 { 0 } else { last - first + 1 };
    let mut resp = if ctx.head || len == 0 {
        Response::new(Body::empty())
    } else {
        if first != 0 {
            head = None;
            reader = match files.cat(cid, first, Some(len)).await {
                Ok(r) => r,
                Err(e) => return files_error(e),
            };
        }
        let cfg = &ctx.inner.config;
        Response::new(crate::body::spawn(
            cfg.stall_timeout,
            cfg.max_response_time,
            move |sink| stream_file(reader, head, len, sink),
        ))
    };
    *resp.status_mut() = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CONTENT_TYPE, value(&content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range.is_some() {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {first}-{last}/{size}")),
        );
    }
    ctx.success_headers(h, &etag, roots);
    ctx.disposition(h, None, false);
    resp
}

/// Sends `len` bytes: `head` (the reader's first chunk, already taken) then the rest.
async fn stream_file(
    mut reader: FileReader,
    head: Option<Bytes>,
    len: u64,
    sink: crate::body::Sink,
) {
    let mut left = len;
    let mut next = head;
    loop {
        let chunk = match next.take() {
            Some(c) => c,
            None => match reader.next_chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return sink.fail(crate::body::why(&e)).await,
            },
        };
        let chunk = chunk.slice(..chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX)));
        left -= chunk.len() as u64;
        if sink.send(chunk).await.is_err() {
            if sink.expired() {
                sink.fail("the response took too long".into()).await;
            }
            return;
        }
        if left == 0 {
            break;
        }
    }
    if left == 0 {
        sink.finish().await;
    } else {
        sink.fail(format!("the file ended {left} bytes early"))
            .await;
    }
}

/// A directory: redirect to the `/` form, then its `index.html` or a listing.
async fn directory(ctx: &Ctx, resolved: Resolved) -> Response {
    if !ctx.path.trailing_slash {
        let location = match ctx.raw_query.as_deref() {
            Some(q) if !q.is_empty() => format!("{}/?{q}", ctx.raw_path),
            _ => format!("{}/", ctx.raw_path),
        };
        let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
        resp.headers_mut()
            .insert(header::LOCATION, value(&location));
        return resp;
    }
    let store = ctx.inner.index.store();
    let mut segments = ctx.path.segments.clone();
    segments.push("index.html".to_string());
    match resolve::resolve(store, &ctx.path.root, &segments).await {
        Ok(index)
            if Node::decode(&index.terminus, &index.block)
                .file_size()
                .is_some() =>
        {
            return file(ctx, &index.terminus, &index.roots, Some("index.html")).await;
        }
        Ok(_) | Err(resolve::ResolveError::NoSuchPath(_)) => {}
        Err(e) => return response::resolve_error(e, false),
    }
    listing(ctx, resolved)
}

/// An HTML listing of a directory's names (from its links: no child is read), streamed
/// shard by shard for a HAMT.
fn listing(ctx: &Ctx, resolved: Resolved) -> Response {
    let cid = resolved.terminus;
    let etag = format!(
        "\"DirIndex-{}_CID-{cid}\"",
        env!("CARGO_PKG_VERSION").replace('.', "")
    );
    if ctx.not_modified(&etag) {
        return ctx.respond_not_modified(&etag, &resolved.roots);
    }
    let mut resp = if ctx.head {
        Response::new(Body::empty())
    } else {
        let store = ctx.inner.index.store().clone();
        let title =
            html_escape(&percent_encoding::percent_decode_str(&ctx.raw_path).decode_utf8_lossy());
        let block = resolved.block;
        let max_depth = ctx.inner.config.max_dag_depth;
        let cfg = &ctx.inner.config;
        Response::new(crate::body::spawn(
            cfg.stall_timeout,
            cfg.max_response_time,
            move |sink| async move {
                let head = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
                 <body><h1>{title}</h1>\n<ul>\n<li><a href=\"..\">..</a></li>\n"
            );
                if sink.send(Bytes::from(head)).await.is_err() {
                    return;
                }
                match list_entries(&store, &cid, block, max_depth, &sink).await {
                    Ok(()) => {
                        if sink
                            .send(Bytes::from_static(b"</ul></body></html>\n"))
                            .await
                            .is_ok()
                        {
                            sink.finish().await;
                        }
                    }
                    Err(Some(why)) => sink.fail(why).await,
                    Err(None) => {}
                }
            },
        ))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    ctx.success_headers(h, &etag, &resolved.roots);
    resp
}

/// Sends one list item per entry; `Err(None)` when the client went away.
async fn list_entries(
    store: &seedbank_blobstore::Store,
    dir: &Cid,
    block: Bytes,
    max_depth: usize,
    sink: &crate::body::Sink,
) -> Result<(), Option<String>> {
    // Shards still to list, depth first (CIDs only: each is read when its turn comes).
    let mut stack: Vec<Cid> = vec![*dir];
    let mut first = Some(block);
    while let Some(cid) = stack.pop() {
        let bytes = match first.take() {
            Some(b) => b,
            None => crate::blocks::get(store, &cid)
                .await
                .map_err(|e| Some(crate::body::why(&e)))?,
        };
        let Node::Pb(PbUnixfs { links, data }) = Node::decode(&cid, &bytes) else {
            return Err(Some(format!("{cid} is not a directory node")));
        };
        let width = match &data {
            Some(d) if d.kind == DataType::HamtShard => Some(
                unixfs::shard_width(d).ok_or_else(|| Some(format!("unsupported HAMT {cid}")))?,
            ),
            _ => None,
        };
        let mut html = String::new();
        let mut subs = Vec::new();
        for l in links {
            let name = l.name.unwrap_or_default();
            let shown = match width {
                Some(w) if name.len() == w => {
                    subs.push(l.cid);
                    continue;
                }
                Some(w) => name.get(w..).unwrap_or_default().to_string(),
                None => name,
            };
            let href =
                percent_encoding::utf8_percent_encode(&shown, percent_encoding::NON_ALPHANUMERIC);
            html.push_str(&format!(
                "<li><a href=\"./{href}\">{}</a> <small>{} ({} B)</small></li>\n",
                html_escape(&shown),
                l.cid,
                l.size.unwrap_or(0)
            ));
        }
        if !html.is_empty() {
            sink.send(Bytes::from(html)).await.map_err(|_| None)?;
        }
        if stack.len().saturating_add(subs.len()) > max_depth.saturating_mul(256) {
            return Err(Some(format!("the HAMT {dir} is too large to list")));
        }
        // Pushed in reverse so the first sub-shard is listed first.
        stack.extend(subs.into_iter().rev());
    }
    Ok(())
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn types_come_from_the_name_then_the_bytes() {
        assert_eq!(sniff(Some("a.png"), b""), "image/png");
        assert_eq!(sniff(Some("a.txt"), b"\0\0"), "text/plain; charset=utf-8");
        assert_eq!(sniff(None, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(None, b"hello"), "text/plain; charset=utf-8");
        assert_eq!(sniff(None, b"  <svg xmlns="), "image/svg+xml");
        assert_eq!(sniff(None, b"\xff\xfe\0\x01"), "application/octet-stream");
        assert_eq!(
            sniff(Some("noext"), "h\u{e9}".as_bytes()),
            "text/plain; charset=utf-8"
        );
    }
}

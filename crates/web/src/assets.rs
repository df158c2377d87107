//! The stylesheet, the script and the logo, embedded in the binary and served under
//! `/static/`. Pages link them by a name that holds a hash of their content
//! (`/static/app.3f2a9c1b.css`), which may be cached for a year; the plain name also
//! works, with an `ETag` and a short cache life.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;
use tollgate_domain::secret::sha256_hex;

/// One embedded file.
pub struct Asset {
    /// The plain name, e.g. `app.css`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// The name with the content hash, e.g. `app.3f2a9c1b.css`.
    pub hashed: String,
    /// A strong ETag of the content.
    pub etag: String,
}

const FILES: [(&str, &str, &[u8]); 3] = [
    ("app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("logo.svg", "image/svg+xml", include_bytes!("../assets/logo.svg")),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, content_type, bytes)| {
            let hash = sha256_hex(bytes);
            let short = &hash[..12];
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            Asset { name, content_type, bytes, hashed: format!("{stem}.{short}.{ext}"), etag: format!("\"{short}\"") }
        })
        .collect()
});

/// The URL a page links `name` at (with its content hash).
pub fn url(name: &str) -> String {
    ASSETS.iter().find(|a| a.name == name).map(|a| format!("/static/{}", a.hashed)).unwrap_or_default()
}

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((asset, hashed)) = ASSETS.iter().find_map(|a| {
        if a.hashed == file {
            Some((a, true))
        } else if a.name == file {
            Some((a, false))
        } else {
            None
        }
    }) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    respond(asset, hashed, &headers)
}

/// `GET /favicon.ico`: the logo.
pub async fn favicon(headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == "logo.svg") {
        Some(asset) => respond(asset, false, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn respond(asset: &Asset, hashed: bool, headers: &HeaderMap) -> Response {
    let cache = if hashed { "public, max-age=31536000, immutable" } else { "public, max-age=300" };
    let etag = HeaderValue::from_str(&asset.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*"));
    let common = [(header::CACHE_CONTROL, HeaderValue::from_static(cache)), (header::ETAG, etag)];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type))], asset.bytes).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_content_hash() {
        let css = url("app.css");
        assert!(css.starts_with("/static/app.") && css.ends_with(".css") && css.len() == "/static/app..css".len() + 12);
        assert_ne!(url("app.js"), "");
        assert_eq!(url("nope.css"), "");
    }
}

//! The dashboard's static files, compiled into the binary so that heapster alone serves a working page, offline.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// One embedded file: its path under `/dashboard/`, media type and bytes.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static str,
}

/// Every file the page loads. The page's scripts are ES modules, so adding one means adding it here too.
const ASSETS: &[Asset] = &[
    Asset { path: "app.css", mime: "text/css; charset=utf-8", body: include_str!("assets/app.css") },
    Asset { path: "app.js", mime: JS, body: include_str!("assets/app.js") },
    Asset { path: "api.js", mime: JS, body: include_str!("assets/api.js") },
    Asset { path: "charts.js", mime: JS, body: include_str!("assets/charts.js") },
    Asset { path: "format.js", mime: JS, body: include_str!("assets/format.js") },
    Asset { path: "table.js", mime: JS, body: include_str!("assets/table.js") },
    Asset { path: "views.js", mime: JS, body: include_str!("assets/views.js") },
    Asset { path: "vendor/uPlot.iife.min.js", mime: JS, body: include_str!("assets/vendor/uPlot.iife.min.js") },
    Asset {
        path: "vendor/uPlot.min.css",
        mime: "text/css; charset=utf-8",
        body: include_str!("assets/vendor/uPlot.min.css"),
    },
    Asset { path: "vendor/LICENSE.uPlot", mime: TEXT, body: include_str!("assets/vendor/LICENSE.uPlot") },
    Asset { path: "vendor/README.md", mime: TEXT, body: include_str!("assets/vendor/README.md") },
];

const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const INDEX: &str = include_str!("assets/index.html");

/// Only this origin's scripts, styles and JSON: a proof, in every browser, that the page fetches nothing from the
/// internet. uPlot sizes its elements through inline styles, hence `'unsafe-inline'` for styles only.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'";

/// Headers every dashboard file carries. `no-cache` (revalidate, not "never store"): the files change with the
/// binary, and a browser holding an old `app.js` against a newer API would show a broken page.
fn respond(mime: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `/`: the page itself.
pub async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

/// `/dashboard/FILE`: one embedded file, or 404 naming it.
pub async fn file(Path(file): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.path == file)
        .map(|a| respond(a.mime, a.body))
        .ok_or_else(|| ApiError::not_found(format!("no dashboard file {file:?}")))
}

//! The HTTP server: `/metrics`, `/livez`, `/readyz` (also the seed's `/q/health/live` and
//! `/q/health/ready`), `/scalers` (JSON, one object per scaler), and the status page at `/`
//! (unless `--ui=false`). Everything is read-only.

use crate::context::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub fn router(ctx: Arc<Context>) -> Router {
    let router = if ctx.ui {
        Router::new().route("/", get(page))
    } else {
        Router::new()
    };
    router
        .route("/metrics", get(metrics))
        .route("/livez", get(live))
        .route("/q/health/live", get(live))
        .route("/readyz", get(ready))
        .route("/q/health/ready", get(ready))
        .route("/scalers", get(scalers))
        .with_state(ctx)
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        // Streamed (chunked) as the client reads: 10,000 scalers are ~4 MB of text.
        axum::body::Body::from_stream(futures::stream::iter(
            ctx.metrics.pages().map(Ok::<_, std::convert::Infallible>),
        )),
    )
}

/// The status page: rendered whole (a page is at most 50 scalers), never cached, and locked
/// down by its Content-Security-Policy.
async fn page(
    State(ctx): State<Arc<Context>>,
    axum::extract::Query(q): axum::extract::Query<crate::web::overview::PageQuery>,
) -> impl IntoResponse {
    let html = crate::web::page::render(&crate::web::overview::gather(&ctx, &q));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                crate::web::page::CONTENT_SECURITY_POLICY.as_str(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
}

async fn live() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// Ready once the first configuration has been loaded.
async fn ready(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    if ctx.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading\n")
    }
}

/// `/scalers?namespace=…&name=…`: narrows the list (both optional).
#[derive(serde::Deserialize)]
struct ScalerFilter {
    namespace: Option<String>,
    name: Option<String>,
}

async fn scalers(
    State(ctx): State<Arc<Context>>,
    axum::extract::Query(f): axum::extract::Query<ScalerFilter>,
) -> impl IntoResponse {
    let pages = ctx.state.json_pages(move |v| {
        f.namespace
            .as_ref()
            .is_none_or(|n| v.namespace.as_deref() == Some(n.as_str()))
            && f.name
                .as_ref()
                .is_none_or(|n| v.name.as_deref() == Some(n.as_str()))
    });
    // Streamed a page at a time as the client reads (chunked): 10,000 scalers are ~10 MB.
    let body = axum::body::Body::from_stream(futures::stream::iter(
        pages.map(Ok::<_, std::convert::Infallible>),
    ));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

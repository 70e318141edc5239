//! The HTTP server: `/metrics`, `/livez`, `/readyz` (also the seed's `/q/health/live` and
//! `/q/health/ready`), and `/scalers` (JSON, one object per scaler).

use crate::agent::Context;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
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
        ctx.metrics.encode(),
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

async fn scalers(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    Json(ctx.state.list())
}

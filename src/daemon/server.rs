//! The daemon's HTTP listener: `/healthz`, `/readyz`, `/status`, `/events` and the
//! signed `/hooks/git` webhook. It binds to localhost unless told otherwise.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc;

use super::Trigger;
use super::events::{EventPage, EventRing};
use super::status::Status;
use super::webhook;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub status: Arc<RwLock<Status>>,
    pub events: Arc<std::sync::Mutex<EventRing>>,
    pub metrics: Arc<Metrics>,
    pub triggers: mpsc::Sender<Trigger>,
    /// `None`: no secret configured, so every webhook is refused.
    pub webhook_secret: Option<Arc<Vec<u8>>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/events", get(events))
        .route("/metrics", get(metrics))
        .route("/hooks/git", post(git_hook))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.status.read().unwrap().ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the cluster has not been observed yet\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn status(State(state): State<AppState>) -> Json<Status> {
    Json(state.status.read().unwrap().clone())
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    #[serde(default)]
    since: u64,
    /// The daemon start `since` came from (the `boot` of an earlier page).
    #[serde(default)]
    boot: Option<String>,
}

/// Read-only like `/status`, and as open: events name objects, jobs and revisions, and
/// never a secret's content.
async fn events(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<EventsQuery>,
) -> Json<EventPage> {
    let page = match state.events.lock() {
        Ok(ring) => ring.since_boot(query.since, query.boot.as_deref()),
        Err(poisoned) => poisoned
            .into_inner()
            .since_boot(query.since, query.boot.as_deref()),
    };
    Json(page)
}

async fn git_hook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &state.webhook_secret else {
        return (
            StatusCode::UNAUTHORIZED,
            "webhooks are refused: the daemon has no webhook secret\n",
        )
            .into_response();
    };
    let signature = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if !webhook::verify(secret, &body, signature) {
        tracing::warn!(
            "webhook refused: missing or bad {}",
            webhook::SIGNATURE_HEADER
        );
        return (StatusCode::UNAUTHORIZED, "bad or missing signature\n").into_response();
    }
    // A full queue already holds a trigger that will read the newest state.
    let _ = state.triggers.try_send(Trigger::Webhook);
    (StatusCode::ACCEPTED, "reconcile triggered\n").into_response()
}

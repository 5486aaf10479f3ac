//! `/v1/scan/*` and `/v1/scans/*`: scanning, past scans and feedback.

mod history;
mod lists;
mod result;
pub mod transactions;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The routes behind the limits middleware (`ratelimit::limits`); `transactions::router()` has
/// its own (`ratelimit::limits_with`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scan/domains", post(lists::scan_domains))
        .route("/scan/addresses", post(lists::scan_addresses))
        .route("/scans", get(history::list_scans))
        .route("/scans/{id}", get(history::get_scan))
        .route("/scans/{id}/feedback", post(history::feedback))
}

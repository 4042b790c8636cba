use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// 200 `ok` when the database answers, else 503: for load balancers and monitoring.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok()
            .content_type(mime::TEXT_PLAIN_UTF_8)
            .insert_header(("Cache-Control", "no-store"))
            .body("ok"),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            HttpResponse::ServiceUnavailable()
                .content_type(mime::TEXT_PLAIN_UTF_8)
                .insert_header(("Cache-Control", "no-store"))
                .body("database unavailable")
        }
    }
}

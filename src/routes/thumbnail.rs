//! `GET|HEAD /files/{id}/thumbnail?size=small|medium` (README: "Thumbnails"): the file's own
//! rule, asked exactly as the detail view asks it, then the stored thumbnail through the one
//! delivery path (ETag, 304, `Cache-Control: private, no-cache`, nosniff). Not an audited
//! download: a list page fetches one per row.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::audit::DownloadEvent;
use crate::db::models::file::FileRow;
use crate::delivery::{self, Download, Presentation};
use crate::error::AppError;
use crate::routes::download::readable_file;
use crate::state::AppState;
use crate::thumbnails::{self, ThumbSize};

#[derive(Deserialize)]
pub struct ThumbnailParams {
    size: Option<String>,
}

impl ThumbnailParams {
    /// The size asked for; an unknown one is a 400.
    pub fn size(&self) -> Result<ThumbSize, AppError> {
        ThumbSize::parse(self.size.as_deref()).map_err(|e| AppError::BadRequest(e.to_string()))
    }
}

pub async fn by_id(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<ThumbnailParams>,
) -> Result<HttpResponse, AppError> {
    let found = readable_file(&req, &id, &mut DownloadEvent::default()).await?;
    let size = params.size()?;
    serve(&req, &state, &found.0, size).await
}

/// Sends `file`'s thumbnail of `size`, once the caller has decided it may be seen; 404 when
/// the file has none.
pub(crate) async fn serve(
    req: &HttpRequest,
    state: &AppState,
    file: &FileRow,
    size: ThumbSize,
) -> Result<HttpResponse, AppError> {
    if !file.thumbnails {
        return Err(AppError::NotFound);
    }
    let key = thumbnails::derived_key(&file.storage_key, size).ok_or(AppError::NotFound)?;
    let storage = state.storage_of(file)?;
    let name = format!("{}-{}.jpg", file.original_name, size.as_str());
    let presentation = Presentation::decide(thumbnails::CONTENT_TYPE, &name, true);
    delivery::deliver(
        req,
        &state.settings.delivery,
        Download {
            storage: storage.as_ref(),
            key: &key,
            presentation,
        },
    )
    .await
}

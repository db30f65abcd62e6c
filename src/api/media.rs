//! `POST /v1.0/media`: the upload door. Reads the multipart stream field by field and hands
//! the file to `media::upload::store`, which streams it into storage.
//!
//! Fields: `conversation_id` (required for an end-user token, and before `file`; optional for
//! API keys, operator and agent tokens, checked the same way a read of that conversation is)
//! and `file`. Owns who may upload and the form; storing is `media`'s.

use crate::agents::Caller;
use crate::app::AppState;
use crate::error::{Error, ErrorBody, Json, Result};
use crate::media::MediaRecord;
use crate::media::upload::{UploadForm, Uploaded, clean_name, store};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use uuid::Uuid;

#[utoipa::path(post, path = "/v1.0/media", tag = "media",
    request_body(content_type = "multipart/form-data", content = UploadForm),
    description = "Stores a file. The type is sniffed from the bytes and must be on the allow-list; \
        each kind has its size limit. An end-user token must name a `conversation_id` of its scope (before `file`).",
    responses((status = 201, body = Uploaded), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>)> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(ct)
        .map_err(|_| Error::bad_request("send the file as multipart/form-data with a `file` field"))?;
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    let scoped = matches!(&caller, Caller::Client(c) if c.convs.is_some());
    let mut conversation: Option<Uuid> = None;
    let mut stored: Option<MediaRecord> = None;
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or("") {
            "conversation_id" => {
                let text = field.text().await.map_err(bad_form)?;
                let id: Uuid = text.trim().parse().map_err(|_| {
                    Error::invalid("invalid_conversation_id", "conversation_id must be a conversation's id")
                })?;
                caller.messages_of(&state, id).await?;
                conversation = Some(id);
            }
            "file" if stored.is_none() => {
                if scoped && conversation.is_none() {
                    return Err(Error::invalid(
                        "conversation_required",
                        "an end-user token uploads for one of its conversations: send `conversation_id` before `file`",
                    ));
                }
                let name = field.file_name().map(clean_name).filter(|n| !n.is_empty());
                stored = Some(store(&state, caller.tenant(), conversation, name, field).await?);
            }
            _ => {}
        }
    }
    let r = stored.ok_or_else(|| Error::invalid("file_required", "the form has no `file` field"))?;
    Ok((StatusCode::CREATED, Json(Uploaded::of(&state, &r))))
}

fn bad_form(e: multer::Error) -> Error {
    Error::bad_request(format!("the multipart body cannot be read: {e}"))
}

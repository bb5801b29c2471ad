//! Reading a JSON request body with the API's own errors (415, 413, 400, 422).

use crate::error::ApiError;
use crate::model::features::{ValidationCode, ValidationError};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpMessage, HttpRequest, web};

/// The body, already read by actix's `Bytes` extractor (limit from `web::PayloadConfig`), parsed
/// by `decode` (`serde_json::from_slice`, or a type's own entry point to it).
pub fn parse<T>(
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
    limit: usize,
    decode: impl FnOnce(&[u8]) -> serde_json::Result<T>,
) -> Result<T, ApiError> {
    require_json(req)?;
    let body = body.map_err(|e| match e.as_response_error().status_code().as_u16() {
        413 => ApiError::PayloadTooLarge { limit },
        _ => ApiError::MalformedJson(format!("could not read the body: {e}")),
    })?;
    decode(&body).map_err(|e| {
        if e.is_data() {
            ApiError::Validation(ValidationError::new(
                ValidationCode::InvalidRequest,
                e.to_string(),
            ))
        } else {
            ApiError::MalformedJson(e.to_string())
        }
    })
}

fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match req.mime_type() {
        Ok(Some(m)) if m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json") => Ok(()),
        _ if given.is_empty() => Err(ApiError::UnsupportedMediaType("no Content-Type".into())),
        _ => Err(ApiError::UnsupportedMediaType(format!("{given:?}"))),
    }
}

//! Reading a JSON request body with the API's own errors (415, 413, 408, 400, 422).
//!
//! The body is read here, not by actix's `Bytes` extractor, so that every limit holds while it
//! arrives: only plain `application/json` (no `Content-Encoding`: a compressed body would be
//! inflated past any limit), at most `limits.max_body_bytes` (refused from `Content-Length` before
//! reading, else at the first byte over), and within `limits.body_read_timeout_seconds` at no
//! less than `limits.body_min_bytes_per_second` after the first two seconds. Clients never see an
//! internal error text.

use crate::configuration::LimitSettings;
use crate::error::{ApiError, ValidationCode, ValidationError, error_responses};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use utoipa::openapi::{RefOr, Response};

/// The errors of [`read`] and [`parse`] but 422 (its codes differ by route), for the OpenAPI
/// document of every route that reads a JSON body.
pub(crate) struct JsonBodyErrors;

impl utoipa::IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[
            (
                400,
                "malformed_json",
                "`malformed_json`: the body is not JSON (numbers beyond the f64 range included)",
            ),
            (
                408,
                "body_timeout",
                "`body_timeout`: the body arrived too slowly (`limits.body_read_timeout_seconds`, \
                 `limits.body_min_bytes_per_second`); the connection is closed",
            ),
            (
                413,
                "payload_too_large",
                "`payload_too_large`: the body is over `limits.max_body_bytes` (refused from \
                 `Content-Length` before reading); the connection is closed",
            ),
            (
                415,
                "unsupported_media_type",
                "`unsupported_media_type`: Content-Type missing or not JSON, or any \
                 `Content-Encoding` (bodies are never decompressed)",
            ),
        ])
    }
}

/// How long a body may take before the minimum rate applies.
const RATE_GRACE: Duration = Duration::from_secs(2);

/// The body, checked and read (see the module documentation).
pub(crate) async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    limits: &LimitSettings,
) -> Result<web::Bytes, ApiError> {
    require_json(req, "application/json")?;
    read_limited(req, payload, limits).await
}

/// An Open Inference Protocol body: JSON, or with the binary tensor extension a JSON header
/// followed by raw tensor bytes, so `application/octet-stream` and no `Content-Type` at all
/// (what V2 clients send) are accepted too. Every limit of [`read`] holds.
pub(crate) async fn read_v2(
    req: &HttpRequest,
    payload: web::Payload,
    limits: &LimitSettings,
) -> Result<web::Bytes, ApiError> {
    let octet_stream = matches!(req.mime_type(), Ok(Some(m))
        if m.type_() == "application" && m.subtype() == "octet-stream");
    if !octet_stream && req.headers().contains_key(CONTENT_TYPE) {
        require_json(
            req,
            "application/json, or application/octet-stream with Inference-Header-Content-Length",
        )?;
    }
    read_limited(req, payload, limits).await
}

/// Reads a body under every limit of the module documentation but the media type.
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limits: &LimitSettings,
) -> Result<web::Bytes, ApiError> {
    refuse_content_encoding(req)?;
    let limit = limits.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }

    let started = Instant::now();
    let hard_deadline = started + limits.body_read_timeout();
    let min_rate = limits.body_min_bytes_per_second.max(1) as f64;
    // Room for the declared length, but no more than 64 KiB before the bytes arrive: a client
    // that only declares a large body must not make the API reserve it.
    let mut body =
        web::BytesMut::with_capacity(declared.map_or(8 * 1024, |n| n as usize).min(64 * 1024));
    loop {
        // The moment the bytes received so far stop meeting the minimum rate.
        let rate_deadline =
            started + RATE_GRACE + Duration::from_secs_f64(body.len() as f64 / min_rate);
        let chunk = tokio::time::timeout_at(rate_deadline.min(hard_deadline), payload.next())
            .await
            .map_err(|_| ApiError::BodyTimeout {
                received: body.len(),
            })?;
        match chunk {
            None => break,
            Some(Ok(bytes)) => {
                if body.len() + bytes.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&bytes);
            }
            Some(Err(e)) => return Err(payload_error(e, limit)),
        }
    }
    Ok(body.freeze())
}

/// Parses a body that has been read completely.
pub(crate) fn parse<'a, T>(
    body: &'a [u8],
    decode: impl FnOnce(&'a [u8]) -> serde_json::Result<T>,
) -> Result<T, ApiError> {
    decode(body).map_err(|e| {
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

/// A fixed text per failure: the payload's own error messages are internal detail.
fn payload_error(e: PayloadError, limit: usize) -> ApiError {
    tracing::debug!(error.message = %e, "reading the request body failed");
    match e {
        PayloadError::Overflow => ApiError::PayloadTooLarge { limit },
        PayloadError::Incomplete(_) => {
            ApiError::MalformedJson("the body ended before it was complete".into())
        }
        _ => ApiError::MalformedJson("the body could not be read".into()),
    }
}

/// A JSON `Content-Type`, else 415 asking for `accepted`.
fn require_json(req: &HttpRequest, accepted: &str) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match req.mime_type() {
        Ok(Some(m)) if m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json") => Ok(()),
        _ if given.is_empty() => Err(ApiError::UnsupportedMediaType(format!(
            "send the body as {accepted} (got no Content-Type)"
        ))),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "send the body as {accepted} (got {given:?})"
        ))),
    }
}

/// Request bodies are never decoded: any `Content-Encoding` but `identity` is a 415.
fn refuse_content_encoding(req: &HttpRequest) -> Result<(), ApiError> {
    let encoding = req
        .headers()
        .get_all(CONTENT_ENCODING)
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .find(|e| !e.is_empty() && !e.eq_ignore_ascii_case(b"identity"));
    match encoding {
        None => Ok(()),
        Some(e) => {
            let shown: String = String::from_utf8_lossy(e).chars().take(32).collect();
            Err(ApiError::UnsupportedMediaType(format!(
                "send the body uncompressed (got Content-Encoding {shown:?})"
            )))
        }
    }
}

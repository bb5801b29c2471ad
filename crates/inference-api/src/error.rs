//! The API's errors and the one table mapping them to HTTP status, and the validation errors
//! (422) that the routes report.

use crate::metrics::ErrorKind;
use crate::model::EngineError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

#[derive(thiserror::Error)]
pub(crate) enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the body arrived too slowly ({received} bytes before the deadline)")]
    BodyTimeout { received: usize },
    #[error("{}", .0.message)]
    Validation(ValidationError),
    #[error("too many requests in flight; retry shortly")]
    Overloaded,
    #[error("the model is not loaded yet")]
    NotReady,
    #[error("no route for {0}")]
    NotFound(String),
    #[error("{0}")]
    UnknownModel(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{0}")]
    UnknownPrediction(String),
    #[error("{0}")]
    AlreadyLabelled(String),
    #[error("the model failed to run")]
    Model(#[source] EngineError),
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The whole cause chain, for logs; clients only see Display.
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl ApiError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::MalformedJson(_) => ErrorKind::MalformedJson,
            Self::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            Self::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::BodyTimeout { .. } => ErrorKind::BodyTimeout,
            Self::Validation(_) => ErrorKind::Validation,
            Self::Overloaded => ErrorKind::Overloaded,
            Self::NotReady => ErrorKind::NotReady,
            Self::NotFound(_) | Self::UnknownModel(_) => ErrorKind::NotFound,
            Self::MethodNotAllowed => ErrorKind::MethodNotAllowed,
            Self::UnknownPrediction(_) => ErrorKind::NotFound,
            Self::AlreadyLabelled(_) => ErrorKind::Conflict,
            Self::Model(_) => ErrorKind::Model,
        }
    }

    /// The `code` clients see: the validation code where there is one, else the kind.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Validation(v) => v.code.as_str(),
            Self::Model(_) => "model_error",
            Self::UnknownPrediction(_) => "unknown_prediction",
            Self::UnknownModel(_) => "unknown_model",
            Self::AlreadyLabelled(_) => "already_labelled",
            other => other.kind().as_str(),
        }
    }
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_ready", "message": "the model is not loaded yet"}}))]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail<'a> {
    /// What went wrong, for programs, e.g. `missing_feature`: each error response names its
    /// codes.
    code: &'a str,
    /// What went wrong, for people; a validation message names the feature and the batch row.
    /// Never internal details.
    message: String,
}

/// OpenAPI responses carrying [`ErrorBody`], one per `(status, example code, description)`:
/// the error statuses that several routes share are described once with this.
pub(crate) fn error_responses(list: &[(u16, &str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|&(status, code, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .example(Some(json!({"error": {"code": code, "message": "…"}})))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build();
            (status.to_string(), response.into())
        })
        .collect()
}

/// 503 `not_ready`, from every route that needs the model.
pub(crate) struct NotReadyResponse;

impl IntoResponses for NotReadyResponse {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = error_responses(&[(
            503,
            "not_ready",
            "`not_ready`: the model is not loaded yet (`GET /ready` says when it is)",
        )]);
        if let Some(RefOr::T(r)) = responses.get_mut("503") {
            r.headers.insert("Retry-After".into(), retry_after_header());
        }
        responses
    }
}

/// The `Retry-After: 1` header of a 503 answer.
fn retry_after_header() -> Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("seconds to wait before retrying: always 1"))
        .build()
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) | Self::UnknownModel(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnknownPrediction(_) => StatusCode::NOT_FOUND,
            Self::AlreadyLabelled(_) => StatusCode::CONFLICT,
            Self::Model(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.respond(
            self.status_code(),
            ErrorBody {
                error: ErrorDetail {
                    code: self.code(),
                    message: self.to_string(),
                },
            },
        )
    }
}

impl ApiError {
    /// The response for this error with `status` and `body`: the one place that logs model
    /// errors, sets `Retry-After` and closes connections whose body was left unread, and tags the
    /// response with the kind the error-counting middleware counts.
    fn respond(&self, status: StatusCode, body: impl Serialize) -> HttpResponse {
        if matches!(self, Self::Model(_)) {
            tracing::error!(error.cause_chain = ?self, error.message = %self, "request failed");
        }
        let mut res = HttpResponse::build(status).json(body);
        if matches!(self, Self::Overloaded | Self::NotReady) {
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("1"),
            );
        }
        if matches!(
            self,
            Self::PayloadTooLarge { .. } | Self::BodyTimeout { .. }
        ) {
            // The rest of the body is never read: the connection cannot be reused.
            res.head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        // Read by the error-counting middleware, so every error is counted in one place.
        res.extensions_mut().insert(self.kind());
        res
    }
}

/// An [`ApiError`] on an Open Inference Protocol (V2) route: the body is the protocol's
/// `{"error": "..."}`, and a request the protocol calls bad (malformed JSON, a validation
/// failure) is a 400 instead of 422. Every other status is [`ApiError`]'s.
#[derive(Debug)]
pub(crate) struct V2Error(pub(crate) ApiError);

impl From<ApiError> for V2Error {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<ValidationError> for V2Error {
    fn from(e: ValidationError) -> Self {
        Self(ApiError::Validation(e))
    }
}

impl std::fmt::Display for V2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The body of every error on an Open Inference Protocol (V2) route.
#[derive(Serialize, ToSchema)]
pub(crate) struct V2ErrorBody {
    /// What is wrong.
    #[schema(example = "input \"input\" has shape [2, 30], which needs 60 values; data has 30")]
    error: String,
}

/// Error responses of V2 routes, by status and description, in the `V2ErrorBody` shape.
pub(crate) fn v2_error_responses(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|&(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("V2ErrorBody")))
                .build();
            let mut response = ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build();
            if matches!(status, 429 | 503) {
                response
                    .headers
                    .insert("Retry-After".into(), retry_after_header());
            }
            (status.to_string(), response.into())
        })
        .collect()
}

impl ResponseError for V2Error {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            ApiError::MalformedJson(_) | ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            other => other.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.0.respond(
            self.status_code(),
            V2ErrorBody {
                error: self.0.to_string(),
            },
        )
    }
}

/// Why a request was refused (the `code` of a 422 body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValidationCode {
    WrongFeatureCount,
    UnknownFeature,
    MissingFeature,
    NonNumericValue,
    NonFiniteValue,
    EmptyBatch,
    BatchTooLarge,
    InvalidRequest,
    UnknownClass,
    UnknownRow,
}

impl ValidationCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::WrongFeatureCount => "wrong_feature_count",
            Self::UnknownFeature => "unknown_feature",
            Self::MissingFeature => "missing_feature",
            Self::NonNumericValue => "non_numeric_value",
            Self::NonFiniteValue => "non_finite_value",
            Self::EmptyBatch => "empty_batch",
            Self::BatchTooLarge => "batch_too_large",
            Self::InvalidRequest => "invalid_request",
            Self::UnknownClass => "unknown_class",
            Self::UnknownRow => "unknown_row",
        }
    }
}

/// A request refused as invalid: the payload of [`ApiError::Validation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidationError {
    pub(crate) code: ValidationCode,
    pub(crate) message: String,
    /// Feature index of every missing value that caused a rejection.
    pub(crate) missing: Vec<usize>,
}

impl ValidationError {
    pub(crate) fn new(code: ValidationCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            missing: Vec::new(),
        }
    }

    /// Prefixes the message with the batch row it is about, if any.
    pub(crate) fn in_row(mut self, row: Option<usize>) -> Self {
        if let Some(i) = row {
            self.message = format!("instances[{i}]: {}", self.message);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_error_details_never_reach_the_body() {
        let e = ApiError::Model(EngineError::Run("tensor at /secret/path exploded".into()));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.to_string(), "the model failed to run");
        assert!(format!("{e:?}").contains("/secret/path"));
    }

    #[test]
    fn validation_errors_carry_their_own_code() {
        let e = ApiError::Validation(ValidationError::new(
            ValidationCode::EmptyBatch,
            "`instances` is empty",
        ));
        assert_eq!(
            (e.status_code().as_u16(), e.code(), e.kind()),
            (422, "empty_batch", ErrorKind::Validation)
        );
    }

    #[test]
    fn v2_errors_are_400_for_bad_requests_and_keep_every_other_status() {
        let bad = V2Error(ApiError::Validation(ValidationError::new(
            ValidationCode::InvalidRequest,
            "x",
        )));
        assert_eq!(bad.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(
            V2Error(ApiError::MalformedJson("x".into())).status_code(),
            StatusCode::BAD_REQUEST
        );
        for e in [
            ApiError::UnknownModel("x".into()),
            ApiError::Overloaded,
            ApiError::NotReady,
            ApiError::PayloadTooLarge { limit: 1 },
        ] {
            let status = e.status_code();
            assert_eq!(V2Error(e).status_code(), status);
        }
    }
}

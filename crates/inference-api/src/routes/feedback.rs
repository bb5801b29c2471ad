//! `POST /feedback`: the true class of an earlier prediction, for live accuracy.

use super::json::JsonBodyErrors;
use crate::error::{ApiError, ErrorBody, NotReadyResponse, ValidationCode, ValidationError};
use crate::quality::feedback::LabelOutcome;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `POST /feedback`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackRequest {
    /// The `request_id` of the prediction (response body or `X-Request-Id`).
    request_id: String,
    /// The row within a batch; 0 for single-row predictions.
    #[serde(default)]
    row: usize,
    /// The true class name.
    #[schema(example = "malignant")]
    label: String,
    /// The model that made the prediction; the default model (`POST /predict`'s) when absent.
    #[serde(default)]
    #[schema(example = "breast-cancer")]
    model: Option<String>,
}

/// The answer to `POST /feedback`: the label, recorded against the prediction.
#[derive(Serialize, ToSchema)]
struct FeedbackResponse<'a> {
    request_id: &'a str,
    row: usize,
    /// The class the model predicted for this row.
    #[schema(example = "benign")]
    predicted: &'a str,
    /// The true class, as sent.
    #[schema(example = "malignant")]
    label: &'a str,
    outcome: Outcome,
}

/// Whether the prediction was right.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Correct,
    Incorrect,
}

/// Records the true class of an earlier prediction, for live accuracy.
///
/// Every predicted row is kept under its request id and row, up to `feedback.store_rows` rows;
/// the oldest are evicted first. Each row takes one label.
#[utoipa::path(
    post,
    path = "/feedback",
    tag = "feedback",
    request_body(
        content = FeedbackRequest,
        content_type = "application/json",
        example = json!({"request_id": "6116f8d2-5c1a-4f0e-9a55-0c3e2b7d9a41", "row": 0, "label": "malignant"}),
    ),
    responses(
        (status = 200, description = "the label is recorded", body = FeedbackResponse),
        JsonBodyErrors,
        (status = 404, body = ErrorBody, description = "`unknown_prediction`: no stored \
            prediction has this request id (unknown, or evicted from the feedback store); \
            `unknown_model`: the repository has no model called `model`"),
        (status = 409, body = ErrorBody, description = "`already_labelled`: this row of the \
            prediction already has a label"),
        (status = 422, body = ErrorBody, description = "`unknown_class` (the label is not one \
            of the model's classes), `unknown_row` (the prediction has fewer rows), \
            `invalid_request` (wrong shape)"),
        NotReadyResponse,
    ),
)]
pub(crate) async fn feedback(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = super::json::read(&req, body, &state.limits).await?;
    let fb: FeedbackRequest = super::json::parse(&body, serde_json::from_slice)?;
    let serving = match &fb.model {
        Some(name) => state.model_named(name)?,
        None => state.model()?,
    };
    let classes = &serving.model.manifest.classes;
    let Some(actual) = classes.iter().position(|c| *c == fb.label) else {
        return Err(ApiError::Validation(ValidationError::new(
            ValidationCode::UnknownClass,
            format!(
                "label {:?} is not one of the model's classes {classes:?}",
                fb.label
            ),
        )));
    };
    let predicted = match serving.feedback.label(&fb.request_id, fb.row) {
        LabelOutcome::Recorded { predicted } => predicted,
        LabelOutcome::UnknownRequest => {
            serving.handles.count_unmatched_feedback();
            return Err(ApiError::UnknownPrediction(format!(
                "no stored prediction has request id {:?} (unknown, or evicted from the feedback store)",
                fb.request_id
            )));
        }
        LabelOutcome::UnknownRow { rows } => {
            return Err(ApiError::Validation(ValidationError::new(
                ValidationCode::UnknownRow,
                format!(
                    "prediction {:?} has {rows} rows; row {} does not exist",
                    fb.request_id, fb.row
                ),
            )));
        }
        LabelOutcome::AlreadyLabelled => {
            return Err(ApiError::AlreadyLabelled(format!(
                "row {} of prediction {:?} already has a label",
                fb.row, fb.request_id
            )));
        }
    };
    let correct = predicted == actual;
    serving.handles.count_feedback(correct);
    Ok(HttpResponse::Ok().json(FeedbackResponse {
        request_id: &fb.request_id,
        row: fb.row,
        predicted: &classes[predicted],
        label: &classes[actual],
        outcome: if correct {
            Outcome::Correct
        } else {
            Outcome::Incorrect
        },
    }))
}

//! `POST /feedback`: the true class of an earlier prediction, for live accuracy.

use crate::error::ApiError;
use crate::error::{ValidationCode, ValidationError};
use crate::metrics::FeedbackOutcome;
use crate::quality::feedback::LabelOutcome;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackRequest {
    /// The `request_id` of the prediction (response body or `X-Request-Id`).
    request_id: String,
    /// The row within a batch; 0 for single-row predictions.
    #[serde(default)]
    row: usize,
    /// The true class name.
    label: String,
}

pub(crate) async fn feedback(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let serving = state.model()?;
    let body = super::json::read(&req, body, &state.limits).await?;
    let fb: FeedbackRequest = super::json::parse(&body, |b| serde_json::from_slice(b))?;
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
    let outcome = if correct {
        FeedbackOutcome::Correct
    } else {
        FeedbackOutcome::Incorrect
    };
    Ok(HttpResponse::Ok().json(json!({
        "request_id": fb.request_id,
        "row": fb.row,
        "predicted": classes[predicted],
        "label": classes[actual],
        "outcome": match outcome { FeedbackOutcome::Correct => "correct", FeedbackOutcome::Incorrect => "incorrect" },
    })))
}

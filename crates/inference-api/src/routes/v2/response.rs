//! The body of an Open Inference Protocol (V2) inference response: the outputs asked for, each as
//! JSON `data` or, with the binary tensor data extension, as little-endian bytes after the JSON
//! (whose length the `Inference-Header-Content-Length` response header gives).

use super::request::{HEADER_LENGTH, Wanted};
use crate::model::Predictions;
use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use serde::Serialize;
use utoipa::ToSchema;

/// The index of the label output in the model's outputs (the probabilities are the other).
const LABEL: usize = 0;

/// The JSON part of an inference response.
#[derive(Serialize, ToSchema)]
pub(crate) struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<ResponseOutput<'a>>,
}

#[derive(Serialize, ToSchema)]
struct ResponseOutput<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinaryParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data<'a>>,
}

#[derive(Serialize, ToSchema)]
struct BinaryParameters {
    binary_data_size: usize,
}

/// INT64 labels or FP32 probabilities, flat in row-major order.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Data<'a> {
    Labels(&'a [usize]),
    Probabilities(&'a [f32]),
}

/// Whom the answer is from and what was asked.
pub(crate) struct Answer<'a> {
    pub(crate) model_name: &'a str,
    pub(crate) model_version: &'a str,
    pub(crate) id: Option<&'a str>,
    /// The model's output names: the label's, then the probabilities'.
    pub(crate) output_names: [&'a str; 2],
    pub(crate) classes: usize,
    pub(crate) wanted: &'a [Wanted],
}

impl Answer<'_> {
    /// The 200 response for `out`.
    pub(crate) fn respond(&self, out: &Predictions) -> HttpResponse {
        let rows = out.rows();
        let mut binary = Vec::new();
        let outputs = self
            .wanted
            .iter()
            .map(|w| {
                let (datatype, shape, data) = if w.output == LABEL {
                    ("INT64", vec![rows], Data::Labels(out.class_indices()))
                } else {
                    (
                        "FP32",
                        vec![rows, self.classes],
                        Data::Probabilities(out.probabilities()),
                    )
                };
                let (parameters, data) = if w.binary {
                    let before = binary.len();
                    match data {
                        Data::Labels(l) => l
                            .iter()
                            .for_each(|&c| binary.extend_from_slice(&(c as i64).to_le_bytes())),
                        Data::Probabilities(p) => p
                            .iter()
                            .for_each(|x| binary.extend_from_slice(&x.to_le_bytes())),
                    }
                    let binary_data_size = binary.len() - before;
                    (Some(BinaryParameters { binary_data_size }), None)
                } else {
                    (None, Some(data))
                };
                ResponseOutput {
                    name: self.output_names[w.output],
                    datatype,
                    shape,
                    parameters,
                    data,
                }
            })
            .collect();
        let head = InferResponse {
            model_name: self.model_name,
            model_version: self.model_version,
            id: self.id,
            outputs,
        };
        if !self.wanted.iter().any(|w| w.binary) {
            return HttpResponse::Ok().json(head);
        }
        let mut body = match serde_json::to_vec(&head) {
            Ok(json) => json,
            // Plain strings and numbers always serialise; this is unreachable in practice.
            Err(e) => return HttpResponse::InternalServerError().body(e.to_string()),
        };
        let json_length = body.len();
        body.extend_from_slice(&binary);
        HttpResponse::Ok()
            .content_type(ContentType::octet_stream())
            .insert_header((HEADER_LENGTH, json_length))
            .body(body)
    }
}

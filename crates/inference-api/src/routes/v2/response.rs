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
        let mut body = match write(&head) {
            Ok(json) => json,
            // Plain strings and numbers always serialise; this is unreachable in practice.
            Err(e) => return HttpResponse::InternalServerError().body(e.to_string()),
        };
        if !self.wanted.iter().any(|w| w.binary) {
            return HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(body);
        }
        let json_length = body.len();
        body.extend_from_slice(&binary);
        HttpResponse::Ok()
            .content_type(ContentType::octet_stream())
            .insert_header((HEADER_LENGTH, json_length))
            .body(body)
    }
}

/// The JSON part of an answer, written straight into a buffer sized once: the same bytes as
/// [`InferResponse`]'s derived `Serialize` (which stays: it is the reference a test below holds
/// `write` to, and its schema documents the answer) at about half the instructions.
fn write(head: &InferResponse<'_>) -> serde_json::Result<Vec<u8>> {
    // Up to 16 bytes a number, and about 100 for each output's fixed keys and name.
    let numbers: usize = head
        .outputs
        .iter()
        .map(|o| match o.data {
            Some(Data::Labels(l)) => l.len(),
            Some(Data::Probabilities(p)) => p.len(),
            None => 0,
        })
        .sum();
    let mut json = Vec::with_capacity(
        64 + head.model_name.len()
            + head.model_version.len()
            + head.id.map_or(0, str::len)
            + 100 * head.outputs.len()
            + 16 * numbers,
    );
    json.extend_from_slice(b"{\"model_name\":");
    serde_json::to_writer(&mut json, head.model_name)?;
    json.extend_from_slice(b",\"model_version\":");
    serde_json::to_writer(&mut json, head.model_version)?;
    if let Some(id) = head.id {
        json.extend_from_slice(b",\"id\":");
        serde_json::to_writer(&mut json, id)?;
    }
    json.extend_from_slice(b",\"outputs\":[");
    for (k, o) in head.outputs.iter().enumerate() {
        if k > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{\"name\":");
        serde_json::to_writer(&mut json, o.name)?;
        json.extend_from_slice(b",\"datatype\":");
        serde_json::to_writer(&mut json, o.datatype)?;
        json.extend_from_slice(b",\"shape\":[");
        comma_separated(&mut json, &o.shape)?;
        json.push(b']');
        if let Some(p) = &o.parameters {
            json.extend_from_slice(b",\"parameters\":{\"binary_data_size\":");
            serde_json::to_writer(&mut json, &p.binary_data_size)?;
            json.push(b'}');
        }
        match o.data {
            Some(Data::Labels(l)) => {
                json.extend_from_slice(b",\"data\":[");
                comma_separated(&mut json, l)?;
                json.push(b']');
            }
            Some(Data::Probabilities(p)) => {
                json.extend_from_slice(b",\"data\":[");
                comma_separated(&mut json, p)?;
                json.push(b']');
            }
            None => {}
        }
        json.push(b'}');
    }
    json.extend_from_slice(b"]}");
    Ok(json)
}

/// `values` as serde_json writes them, comma-separated.
fn comma_separated<T: Serialize>(json: &mut Vec<u8>, values: &[T]) -> serde_json::Result<()> {
    for (i, x) in values.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        serde_json::to_writer(&mut *json, x)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_gives_the_bytes_of_the_derived_serialisation() {
        let labels = [0usize, 1, 2, 1];
        let probabilities = [
            0.0f32,
            1.0,
            0.1,
            1e-7,
            0.333_333_34,
            0.999_999_9,
            3.5e-30,
            2.5,
        ];
        let output = |name, labels_out: bool, binary: bool| ResponseOutput {
            name,
            datatype: if labels_out { "INT64" } else { "FP32" },
            shape: if labels_out { vec![4] } else { vec![4, 2] },
            parameters: binary.then_some(BinaryParameters {
                binary_data_size: 32,
            }),
            data: match (binary, labels_out) {
                (true, _) => None,
                (false, true) => Some(Data::Labels(&labels)),
                (false, false) => Some(Data::Probabilities(&probabilities)),
            },
        };
        let mut checked = 0;
        for id in [None, Some("a1"), Some("quote \" and \\ and \u{1} and é")] {
            for outputs in [
                vec![(true, false), (false, false)],
                vec![(false, false), (true, false)],
                vec![(true, true), (false, true)],
                vec![(false, true), (true, false)],
                vec![(false, false)],
                vec![],
            ] {
                let head = InferResponse {
                    model_name: "breast-\"cancer\"",
                    model_version: "1.0.0",
                    id,
                    outputs: outputs
                        .iter()
                        .map(|&(l, b)| output(if l { "label" } else { "prob\tabilities" }, l, b))
                        .collect(),
                };
                assert_eq!(
                    String::from_utf8(write(&head).expect("writes")).expect("UTF-8"),
                    serde_json::to_string(&head).expect("serialises"),
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 18);
    }
}

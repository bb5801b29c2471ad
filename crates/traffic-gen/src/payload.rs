//! What to send: the body and content type of each request kind, built from real sample rows.
//!
//! Everything that does not depend on the ticket is rendered once, up front, so building a
//! request at 10k req/s is a cheap `Bytes` clone (batches are concatenated from pre-rendered rows).

use crate::plan::RequestKind;
use bytes::Bytes;
use model_bundle::Bundle;
use model_bundle::Drift;

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain";

/// Body size of `oversized` requests by default: just over the API's 2 MiB default limit.
pub const DEFAULT_OVERSIZED_BYTES: usize = 2 * 1024 * 1024 + 64 * 1024;

/// One request, ready to send to `POST /predict`.
#[derive(Clone, Debug)]
pub struct Request {
    pub kind: RequestKind,
    pub content_type: &'static str,
    pub body: Bytes,
    /// The sample row behind a single-row request (its true label is in the bundle).
    pub row: Option<usize>,
    /// Which of the run's models it goes to (`Executor::targets`); 0 with one model.
    pub target: usize,
}

/// Why a bundle cannot make requests.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error(
        "its samples have no feature columns (samples.csv has only the `{}` column, or model.json lists no features); every request needs at least one feature value",
        model_bundle::LABEL_COLUMN
    )]
    NoFeatures,
    #[error("it has no sample rows")]
    NoSamples,
}

/// Pre-rendered bodies for every kind.
pub struct Payloads {
    object_rows: Vec<Bytes>,
    array_rows: Vec<Bytes>,
    /// `[v0, v1, ...]` per sample, the building block of batches.
    row_arrays: Vec<String>,
    drift_rows: Vec<Bytes>,
    wrong_count: Vec<Bytes>,
    non_numeric: Vec<Bytes>,
    malformed: Vec<Bytes>,
    oversized: Bytes,
    /// The true class of each sample, and a different class to label it wrongly with.
    labels: Vec<(String, String)>,
    /// The model feedback names (`None`: the API's default model).
    model: Option<String>,
}

impl Payloads {
    /// Renders every body from `bundle`, which needs at least one sample row and one feature.
    pub fn new(
        bundle: &Bundle,
        drift: &Drift,
        oversized_bytes: usize,
    ) -> Result<Self, PayloadError> {
        let names = &bundle.features;
        let rows: Vec<&[f64]> = bundle
            .samples
            .iter()
            .map(|s| s.features.as_slice())
            .collect();
        if rows.is_empty() {
            return Err(PayloadError::NoSamples);
        }
        if names.is_empty() || rows.iter().any(|r| r.is_empty()) {
            return Err(PayloadError::NoFeatures);
        }
        let single = |body: String| Bytes::from(body);
        let object_rows: Vec<Bytes> = rows
            .iter()
            .map(|r| single(format!("{{\"features\":{}}}", object(names, r))))
            .collect();
        let row_arrays: Vec<String> = rows.iter().map(|r| array(r)).collect();
        let array_rows = row_arrays
            .iter()
            .map(|a| single(format!("{{\"features\":{a}}}")))
            .collect();
        let drift_rows = rows
            .iter()
            .map(|r| {
                let moved = drift.apply(r, &bundle.stats);
                single(format!("{{\"features\":{}}}", object(names, &moved)))
            })
            .collect();
        let wrong_count = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // Alternately one feature short and one too many.
                let body = if i % 2 == 0 {
                    array(&r[..r.len() - 1])
                } else {
                    let mut longer = r.to_vec();
                    longer.push(r[0]);
                    array(&longer)
                };
                single(format!("{{\"features\":{body}}}"))
            })
            .collect();
        let non_numeric = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let at = i % names.len();
                let mut parts = Vec::with_capacity(names.len());
                for (j, (name, v)) in names.iter().zip(r.iter()).enumerate() {
                    let value = if j == at {
                        "\"n/a\"".to_owned()
                    } else {
                        number(*v)
                    };
                    parts.push(format!("{}:{value}", quoted(name)));
                }
                single(format!("{{\"features\":{{{}}}}}", parts.join(",")))
            })
            .collect();
        let malformed = object_rows.iter().map(|b| b.slice(..b.len() / 2)).collect();
        let oversized = oversized_body(&row_arrays, oversized_bytes);
        // The classes in order of first appearance; a wrong label is the next one round.
        let mut classes: Vec<&str> = Vec::new();
        for s in &bundle.samples {
            if !classes.contains(&s.label.as_str()) {
                classes.push(&s.label);
            }
        }
        let labels = bundle
            .samples
            .iter()
            .map(|s| {
                let at = classes.iter().position(|c| *c == s.label).unwrap_or(0);
                let other = classes[(at + 1) % classes.len()];
                (s.label.clone(), other.to_owned())
            })
            .collect();
        Ok(Self {
            object_rows,
            array_rows,
            row_arrays,
            drift_rows,
            wrong_count,
            non_numeric,
            malformed,
            oversized,
            labels,
            model: None,
        })
    }

    /// The request for a ticket. `choice` picks rows and variants; the same choice gives the
    /// same body.
    pub fn build(&self, kind: RequestKind, choice: u64, batch_size: usize) -> Request {
        let n = self.object_rows.len() as u64;
        let row = (choice % n) as usize;
        let variant = (choice >> 32) & 1 == 1;
        let (content_type, body, row) = match kind {
            RequestKind::Single if variant => (JSON, self.array_rows[row].clone(), Some(row)),
            RequestKind::Single => (JSON, self.object_rows[row].clone(), Some(row)),
            RequestKind::Batch => (JSON, self.batch(choice, batch_size), None),
            RequestKind::Drift => (JSON, self.drift_rows[row].clone(), Some(row)),
            RequestKind::MalformedJson => (JSON, self.malformed[row].clone(), None),
            RequestKind::WrongFeatureCount => (JSON, self.wrong_count[row].clone(), None),
            RequestKind::NonNumeric => (JSON, self.non_numeric[row].clone(), None),
            RequestKind::WrongContentType => (TEXT, self.object_rows[row].clone(), None),
            RequestKind::Oversized => (JSON, self.oversized.clone(), None),
            RequestKind::Feedback | RequestKind::WrongFeedback => {
                (JSON, self.object_rows[row].clone(), Some(row))
            }
        };
        Request {
            kind,
            content_type,
            body,
            row,
            target: 0,
        }
    }

    /// The `POST /feedback` body labelling `row` of the prediction `request_id`: its true class,
    /// or a different one when `wrong`.
    pub fn feedback(&self, request_id: &str, row: usize, wrong: bool) -> Bytes {
        let (truth, other) = &self.labels[row];
        let label = if wrong { other } else { truth };
        let model = match &self.model {
            Some(m) => format!(",\"model\":{}", quoted(m)),
            None => String::new(),
        };
        Bytes::from(format!(
            "{{\"request_id\":{},\"label\":{}{model}}}",
            quoted(request_id),
            quoted(label)
        ))
    }

    /// The same bodies, with feedback naming `model` (`None`: the API's default model).
    pub fn for_model(self, model: Option<String>) -> Self {
        Self { model, ..self }
    }

    fn batch(&self, choice: u64, size: usize) -> Bytes {
        let mut state = choice;
        let n = self.row_arrays.len() as u64;
        let mut body = String::with_capacity(16 + size * (self.row_arrays[0].len() + 1));
        body.push_str("{\"instances\":[");
        for i in 0..size {
            if i > 0 {
                body.push(',');
            }
            let row = (splitmix64(&mut state) % n) as usize;
            body.push_str(&self.row_arrays[row]);
        }
        body.push_str("]}");
        Bytes::from(body)
    }
}

/// A syntactically valid batch body of at least `min_len` bytes.
fn oversized_body(rows: &[String], min_len: usize) -> Bytes {
    let mut body = String::with_capacity(min_len + 1024);
    body.push_str("{\"instances\":[");
    let mut i = 0;
    while body.len() + 2 < min_len {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&rows[i % rows.len()]);
        i += 1;
    }
    body.push_str("]}");
    Bytes::from(body)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn number(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

fn quoted(name: &str) -> String {
    serde_json::Value::from(name).to_string()
}

fn array(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| number(*v)).collect();
    format!("[{}]", parts.join(","))
}

fn object(names: &[String], values: &[f64]) -> String {
    let parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{}:{}", quoted(n), number(*v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_bundle::samples::{Sample, stats_from_samples};
    use serde_json::Value;

    fn bundle() -> Bundle {
        let features = vec!["a".to_owned(), "b c".to_owned(), "d".to_owned()];
        let samples = vec![
            Sample {
                features: vec![1.0, 2.5, -3.0],
                label: "x".into(),
            },
            Sample {
                features: vec![4.0, 5.0, 6.0],
                label: "y".into(),
            },
        ];
        let stats = stats_from_samples(&features, &samples);
        Bundle {
            features,
            samples,
            stats,
        }
    }

    fn json(r: &Request) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&r.body)
    }

    #[test]
    fn valid_kinds_are_well_formed_rows_and_batches() {
        let p = Payloads::new(&bundle(), &Drift::default(), 1000).expect("payloads");
        let obj = json(&p.build(RequestKind::Single, 0, 1)).expect("json");
        assert_eq!(obj["features"]["b c"], 2.5);
        let arr = json(&p.build(RequestKind::Single, 1 | (1 << 32), 1)).expect("json");
        assert_eq!(arr["features"], serde_json::json!([4.0, 5.0, 6.0]));
        let batch = json(&p.build(RequestKind::Batch, 9, 7)).expect("json");
        let rows = batch["instances"].as_array().expect("instances");
        assert_eq!(rows.len(), 7);
        assert!(rows.iter().all(|r| r.as_array().map(Vec::len) == Some(3)));
        let drift = json(&p.build(RequestKind::Drift, 0, 1)).expect("json");
        // mean of "a" is 2.5 and its std 1.5: 1 + 1.5.
        assert_eq!(drift["features"]["a"], 2.5);
    }

    #[test]
    fn bad_kinds_are_bad_in_the_way_their_name_says() {
        let p = Payloads::new(&bundle(), &Drift::default(), 5000).expect("payloads");
        assert!(json(&p.build(RequestKind::MalformedJson, 0, 1)).is_err());
        for choice in [0, 1] {
            let wrong = json(&p.build(RequestKind::WrongFeatureCount, choice, 1)).expect("json");
            let len = wrong["features"].as_array().map(Vec::len);
            assert!(len == Some(2) || len == Some(4), "{len:?}");
        }
        let nn = json(&p.build(RequestKind::NonNumeric, 0, 1)).expect("json");
        assert_eq!(nn["features"]["a"], "n/a");
        let text = p.build(RequestKind::WrongContentType, 0, 1);
        assert_eq!(text.content_type, TEXT);
        assert!(json(&text).is_ok());
        let big = p.build(RequestKind::Oversized, 0, 1);
        assert!(big.body.len() >= 5000);
        assert!(json(&big).is_ok());
    }

    #[test]
    fn feedback_labels_are_the_true_class_or_another_one() {
        let p = Payloads::new(&bundle(), &Drift::default(), 1000).expect("payloads");
        let req = p.build(RequestKind::Feedback, 1, 1);
        assert_eq!(
            (req.row, json(&req).expect("json")["features"]["a"].clone()),
            (Some(1), 4.0.into())
        );
        let right: Value = serde_json::from_slice(&p.feedback("id-1", 1, false)).expect("json");
        assert_eq!(
            right,
            serde_json::json!({"request_id": "id-1", "label": "y"})
        );
        let wrong: Value = serde_json::from_slice(&p.feedback("id-\"2", 1, true)).expect("json");
        assert_eq!(
            wrong,
            serde_json::json!({"request_id": "id-\"2", "label": "x"})
        );
    }

    #[test]
    fn the_same_choice_builds_the_same_body() {
        let p = Payloads::new(&bundle(), &Drift::default(), 1000).expect("payloads");
        for kind in RequestKind::ALL {
            assert_eq!(p.build(kind, 12345, 5).body, p.build(kind, 12345, 5).body);
        }
    }

    #[test]
    fn a_bundle_without_feature_columns_or_rows_is_refused_not_a_panic() {
        let no_features = Bundle {
            features: Vec::new(),
            samples: vec![Sample {
                features: Vec::new(),
                label: "x".into(),
            }],
            stats: Vec::new(),
        };
        let err = Payloads::new(&no_features, &Drift::default(), 1000).err();
        assert_eq!(err, Some(PayloadError::NoFeatures));
        let mut no_rows = bundle();
        no_rows.samples.clear();
        let err = Payloads::new(&no_rows, &Drift::default(), 1000).err();
        assert_eq!(err, Some(PayloadError::NoSamples));
    }
}

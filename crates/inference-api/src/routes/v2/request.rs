//! Parsing an Open Inference Protocol (V2) inference request into the model's input matrix and
//! the outputs asked for: JSON tensors (`data` flat or nested, row-major) and the binary tensor
//! data extension (`Inference-Header-Content-Length`: that many bytes of JSON, then each binary
//! input's `binary_data_size` bytes, little-endian, in input order).
//!
//! The model takes one input of shape `[rows, features]`, FP32 or FP64; every refusal is a
//! [`ValidationError`] naming what is wrong (400 on V2 routes).

use crate::error::{ValidationCode, ValidationError};
use crate::model::features::FeatureMatrix;
use crate::routes::fast_json;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use utoipa::ToSchema;

/// The request header giving the length of the JSON part of a binary request.
pub(crate) const HEADER_LENGTH: &str = "inference-header-content-length";

/// The JSON part of an inference request, its strings borrowed from the body where they have no
/// escapes.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct InferRequest<'a> {
    /// Echoed in the response.
    #[serde(borrow)]
    #[schema(value_type = Option<String>)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(default)]
    parameters: Parameters,
    #[serde(borrow)]
    inputs: Vec<RequestInput<'a>>,
    #[serde(borrow)]
    outputs: Option<Vec<RequestOutput<'a>>>,
}

/// The parameters this server reads; any other is ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct Parameters {
    /// Request: answer every output in binary unless the output says otherwise.
    binary_data_output: Option<bool>,
    /// Input: its data is this many bytes of the binary part instead of `data`.
    binary_data_size: Option<u64>,
    /// Output: answer it in binary.
    binary_data: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct RequestInput<'a> {
    #[serde(borrow)]
    #[schema(value_type = String)]
    name: Cow<'a, str>,
    shape: Vec<i64>,
    #[serde(borrow)]
    #[schema(value_type = String)]
    datatype: Cow<'a, str>,
    #[serde(default)]
    parameters: Parameters,
    /// Numbers, flat or nested in row-major order.
    #[schema(value_type = Option<Vec<serde_json::Value>>)]
    data: Option<FlatData>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct RequestOutput<'a> {
    #[serde(borrow)]
    #[schema(value_type = String)]
    name: Cow<'a, str>,
    #[serde(default)]
    parameters: Parameters,
}

/// What the model takes: its one input's name, its features' names in input order, and the
/// row limit.
pub(crate) struct InputSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) features: &'a [String],
    pub(crate) max_rows: usize,
}

/// One output to answer, and whether its data goes in the binary part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) output: usize,
    pub(crate) binary: bool,
}

/// A request ready for the model.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub(crate) id: Option<Cow<'a, str>>,
    pub(crate) matrix: FeatureMatrix,
    /// Indices into the model's output names, in the order asked for.
    pub(crate) outputs: Vec<Wanted>,
}

/// A client-given string as it appears in messages: at most 64 characters.
pub(crate) fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

fn invalid(message: String) -> ValidationError {
    ValidationError::new(ValidationCode::InvalidRequest, message)
}

/// Splits a body into its JSON and binary parts by `Inference-Header-Content-Length` (none: the
/// whole body is JSON).
pub(crate) fn split<'a>(
    body: &'a [u8],
    header_length: Option<&str>,
) -> Result<(&'a [u8], &'a [u8]), ValidationError> {
    let Some(given) = header_length else {
        return Ok((body, &[]));
    };
    let shown: String = given.chars().take(32).collect();
    let n: usize = given.trim().parse().map_err(|_| {
        invalid(format!(
            "Inference-Header-Content-Length {shown:?} is not a byte count"
        ))
    })?;
    if n > body.len() {
        return Err(invalid(format!(
            "Inference-Header-Content-Length {n} is past the end of the {}-byte body",
            body.len()
        )));
    }
    Ok(body.split_at(n))
}

impl<'a> InferRequest<'a> {
    /// Parses the JSON part of a request: the commonest form ([`fast_json::v2_request`]) directly,
    /// everything else (and every error) through serde_json.
    pub(crate) fn from_json(json: &'a [u8]) -> serde_json::Result<Self> {
        let Some(fast) = fast_json::v2_request(json) else {
            return serde_json::from_slice(json);
        };
        Ok(Self {
            id: fast.id.map(Cow::Borrowed),
            parameters: Parameters::default(),
            inputs: vec![RequestInput {
                name: Cow::Borrowed(fast.name),
                shape: fast.shape,
                datatype: Cow::Borrowed(fast.datatype),
                parameters: Parameters::default(),
                data: Some(FlatData {
                    values: fast.data,
                    not_a_number: None,
                }),
            }],
            outputs: None,
        })
    }

    /// Validates the request against the model and lays its input out for it.
    pub(crate) fn into_parsed(
        self,
        binary: &[u8],
        input: &InputSpec<'_>,
        output_names: &[&str],
    ) -> Result<Parsed<'a>, ValidationError> {
        let outputs = self.wanted(output_names)?;
        let [tensor] = <[RequestInput<'a>; 1]>::try_from(self.inputs).map_err(|inputs| {
            invalid(format!(
                "the model takes one input, {:?}; the request has {}",
                input.name,
                inputs.len()
            ))
        })?;
        if tensor.name != input.name {
            return Err(invalid(format!(
                "unknown input {:?}: the model's input is {:?}",
                shown(&tensor.name),
                input.name
            )));
        }
        let rows = tensor.rows(input)?;
        let values = tensor.values(binary, rows * input.features.len(), input)?;
        Ok(Parsed {
            id: self.id,
            matrix: FeatureMatrix {
                rows,
                values,
                imputed: Vec::new(),
            },
            outputs,
        })
    }

    /// The outputs asked for (all of them when `outputs` is absent), each binary when its own
    /// `binary_data` or else the request's `binary_data_output` says so.
    fn wanted(&self, names: &[&str]) -> Result<Vec<Wanted>, ValidationError> {
        let default_binary = self.parameters.binary_data_output.unwrap_or(false);
        let Some(asked) = &self.outputs else {
            return Ok((0..names.len())
                .map(|output| Wanted {
                    output,
                    binary: default_binary,
                })
                .collect());
        };
        asked
            .iter()
            .map(|o| {
                let output = names.iter().position(|n| *n == o.name).ok_or_else(|| {
                    invalid(format!(
                        "unknown output {:?}: the model's outputs are {}",
                        shown(&o.name),
                        names
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                Ok(Wanted {
                    output,
                    binary: o.parameters.binary_data.unwrap_or(default_binary),
                })
            })
            .collect()
    }
}

/// An input's element type.
#[derive(Clone, Copy)]
enum Float {
    F32,
    F64,
}

impl RequestInput<'_> {
    fn float(&self) -> Result<Float, ValidationError> {
        match self.datatype.as_ref() {
            "FP32" => Ok(Float::F32),
            "FP64" => Ok(Float::F64),
            other => Err(invalid(format!(
                "input {:?} has datatype {:?}; the model takes FP32 (or FP64)",
                self.name,
                shown(other)
            ))),
        }
    }

    /// The row count of a `[rows, features]` shape.
    fn rows(&self, input: &InputSpec<'_>) -> Result<usize, ValidationError> {
        let f = input.features.len();
        let shape = &self.shape;
        // Only for messages: a shape can be any length.
        let shown = || {
            if shape.len() <= 4 {
                format!("{shape:?}")
            } else {
                format!("{:?} and {} more dimensions", &shape[..4], shape.len() - 4)
            }
        };
        let [rows, features] = shape[..] else {
            let shown = shown();
            return Err(invalid(format!(
                "input {:?} has shape {shown}; the model takes [rows, {f}]",
                self.name
            )));
        };
        if rows < 0 || features < 0 {
            let shown = shown();
            return Err(invalid(format!(
                "input {:?} has shape {shown}: dimensions cannot be negative",
                self.name
            )));
        }
        if features as u64 != f as u64 {
            let shown = shown();
            return Err(ValidationError::new(
                ValidationCode::WrongFeatureCount,
                format!(
                    "input {:?} has shape {shown}: expected {f} features per row, got {features}",
                    self.name
                ),
            ));
        }
        if rows == 0 {
            let shown = shown();
            return Err(ValidationError::new(
                ValidationCode::EmptyBatch,
                format!("input {:?} has shape {shown}: no rows", self.name),
            ));
        }
        if rows as u64 > input.max_rows as u64 {
            let shown = shown();
            return Err(ValidationError::new(
                ValidationCode::BatchTooLarge,
                format!(
                    "input {:?} has shape {shown}: {rows} rows, at most {} are accepted",
                    self.name, input.max_rows
                ),
            ));
        }
        Ok(rows as usize)
    }

    /// The `count` values of the input, from `data` or from the binary part.
    fn values(
        self,
        binary: &[u8],
        count: usize,
        input: &InputSpec<'_>,
    ) -> Result<Vec<f32>, ValidationError> {
        let float = self.float()?;
        let name = &self.name;
        let shape = &self.shape;
        let values: Vec<f32> = match (self.parameters.binary_data_size, self.data) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "input {name:?} has both `data` and a `binary_data_size`"
                )));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "input {name:?} has no `data` and no `binary_data_size`"
                )));
            }
            (Some(size), None) => {
                if size > binary.len() as u64 {
                    return Err(invalid(format!(
                        "input {name:?} has binary_data_size {size}, larger than the {} bytes of \
                         binary data after the JSON header",
                        binary.len()
                    )));
                }
                let width = match float {
                    Float::F32 => 4,
                    Float::F64 => 8,
                };
                if size != (count * width) as u64 {
                    return Err(invalid(format!(
                        "input {name:?} has binary_data_size {size}, but {} values of shape \
                         {shape:?} take {} bytes",
                        self.datatype,
                        count * width
                    )));
                }
                if binary.len() as u64 > size {
                    return Err(invalid(format!(
                        "the body has {} bytes of binary data that no input claims",
                        binary.len() as u64 - size
                    )));
                }
                match float {
                    Float::F32 => binary
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    Float::F64 => binary
                        .chunks_exact(8)
                        .map(|b| {
                            f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                                as f32
                        })
                        .collect(),
                }
            }
            (None, Some(data)) => {
                if !binary.is_empty() {
                    return Err(invalid(format!(
                        "the body has {} bytes of binary data that no input claims",
                        binary.len()
                    )));
                }
                if let Some((at, what)) = data.not_a_number {
                    return Err(ValidationError::new(
                        ValidationCode::NonNumericValue,
                        format!("input {name:?}: data[{at}] is {what}, expected a number"),
                    ));
                }
                if data.values.len() != count {
                    return Err(invalid(format!(
                        "input {name:?} has shape {shape:?}, which needs {count} values; data has {}",
                        data.values.len()
                    )));
                }
                data.values
            }
        };
        if let Some(at) = values.iter().position(|x| !x.is_finite()) {
            return Err(ValidationError::new(
                ValidationCode::NonFiniteValue,
                format!(
                    "input {name:?}: row {}, feature {:?} is not a finite 32-bit float",
                    at / input.features.len(),
                    input.features[at % input.features.len()]
                ),
            ));
        }
        Ok(values)
    }
}

/// A tensor's `data` flattened in row-major order: numbers, in arrays nested to any depth, each
/// read as serde_json reads an f64 and then narrowed to f32 (so a value outside the f32 range is
/// infinite, and refused by the finiteness check). The first element that is not a number is
/// kept, to explain the rejection.
#[derive(Debug, Default)]
struct FlatData {
    values: Vec<f32>,
    not_a_number: Option<(usize, &'static str)>,
}

impl FlatData {
    fn push(&mut self, x: f64) {
        self.values.push(x as f32);
    }

    fn other(&mut self, what: &'static str) {
        if self.not_a_number.is_none() {
            self.not_a_number = Some((self.values.len(), what));
        }
        self.values.push(f32::NAN);
    }
}

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = FlatData::default();
        d.deserialize_any(Flatten(&mut out))?;
        Ok(out)
    }
}

/// Appends one JSON value (a number, or an array of them at any depth) to a [`FlatData`].
struct Flatten<'a>(&'a mut FlatData);

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("numbers, in arrays nested in row-major order")
    }

    fn visit_f64<E>(self, x: f64) -> Result<(), E> {
        self.0.push(x);
        Ok(())
    }

    fn visit_i64<E>(self, x: i64) -> Result<(), E> {
        self.0.push(x as f64);
        Ok(())
    }

    fn visit_u64<E>(self, x: u64) -> Result<(), E> {
        self.0.push(x as f64);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.0.other("a string");
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0.other("a boolean");
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.other("null");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.0.other("an object");
        Ok(())
    }
}

/// Whether the fast path ([`fast_json::v2_request`]) agrees with serde_json on `json`: whenever
/// it reads a request, serde_json must read the same one. `Ok(true)` when the fast path answered.
fn fast_path_agrees(json: &[u8]) -> Result<bool, String> {
    if fast_json::v2_request(json).is_none() {
        return Ok(false);
    }
    let fast = InferRequest::from_json(json).map_err(|e| e.to_string())?;
    let slow = serde_json::from_slice::<InferRequest>(json)
        .map_err(|e| format!("the fast path accepted a request serde_json refuses: {e}"))?;
    let (fast, slow) = (format!("{fast:?}"), format!("{slow:?}"));
    if fast != slow {
        return Err(format!("the paths disagree: fast {fast}, serde {slow}"));
    }
    Ok(true)
}

/// Parses `body` as the V2 `infer` route does, for a model with `features` inputs per row and a
/// `max_rows` limit, and checks what it accepts: the fuzz target `v2_infer` (crates/fuzz) calls
/// it. The first two bytes of `input` choose the `Inference-Header-Content-Length` (0: none;
/// else that value minus 1, which may lie past the end), the rest is the body. `Ok(Some(rows))`
/// when the request is accepted, `Ok(None)` when refused, `Err` when the fast path and serde_json
/// read the JSON part differently or an accepted request breaks an invariant (a matrix that is not
/// `rows × features` finite values, or an output the model does not have).
pub fn v2_infer_accepts(
    input: &[u8],
    features: usize,
    max_rows: usize,
) -> Result<Option<usize>, String> {
    let (header, body) = match input {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => return Ok(None),
    };
    let header = (header > 0).then(|| (header - 1).to_string());
    let Ok((json, binary)) = split(body, header.as_deref()) else {
        return Ok(None);
    };
    fast_path_agrees(json)?;
    let Ok(request) = InferRequest::from_json(json) else {
        return Ok(None);
    };
    let names: Vec<String> = (0..features).map(|i| format!("f{i}")).collect();
    let spec = InputSpec {
        name: "input",
        features: &names,
        max_rows,
    };
    let Ok(parsed) = request.into_parsed(binary, &spec, &["label", "probabilities"]) else {
        return Ok(None);
    };
    let m = &parsed.matrix;
    if m.rows == 0
        || m.rows > max_rows
        || m.values.len() != m.rows * features
        || m.values.iter().any(|x| !x.is_finite())
        || parsed.outputs.iter().any(|w| w.output > 1)
    {
        return Err(format!(
            "accepted {} rows of {} values, outputs {:?}",
            m.rows,
            m.values.len(),
            parsed.outputs
        ));
    }
    Ok(Some(m.rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OUTPUTS: [&str; 2] = ["label", "probabilities"];

    fn parse_with(
        body: serde_json::Value,
        binary: &[u8],
    ) -> Result<Parsed<'static>, ValidationError> {
        let text = body.to_string();
        let req: InferRequest = serde_json::from_str(&text).expect("a request");
        let features = ["a".to_string(), "b".to_string()];
        let spec = InputSpec {
            name: "input",
            features: &features,
            max_rows: 3,
        };
        req.into_parsed(binary, &spec, &OUTPUTS).map(|p| Parsed {
            id: p.id.map(|id| Cow::Owned(id.into_owned())),
            matrix: p.matrix,
            outputs: p.outputs,
        })
    }

    fn parse(body: serde_json::Value) -> Result<Parsed<'static>, ValidationError> {
        parse_with(body, &[])
    }

    fn input(
        shape: serde_json::Value,
        datatype: &str,
        data: serde_json::Value,
    ) -> serde_json::Value {
        json!({"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]})
    }

    #[test]
    fn the_fast_path_reads_common_requests_exactly_as_serde_json_does() {
        for body in [
            r#"{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[1.5,-2]}]}"#,
            r#"{"id":"a1","inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[[1,2],[3e-5,0.000123]]}]}"#,
            " {\n \"inputs\" : [ { \"data\" : [ [ 17.99 , -0 ] , [ -0.0 , 9007199254740992 ] ] ,\t\"datatype\":\"FP32\", \"shape\" : [ 2 , 2 ], \"name\":\"inpüt\" } ] , \"id\" : \"\" }\n",
            r#"{"inputs":[{"name":"x","shape":[],"datatype":"INT8","data":7}]}"#,
            r#"{"inputs":[{"name":"x","shape":[0,30],"datatype":"FP32","data":[]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[[[[1]]],2,[3,[4]]]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1e22,1e-22,2.675]}]}"#,
        ] {
            assert_eq!(fast_path_agrees(body.as_bytes()), Ok(true), "{body}");
        }
    }

    #[test]
    fn the_fast_path_leaves_everything_else_to_serde_json() {
        let wide = "[".repeat(5) + "1" + &"]".repeat(5);
        for body in [
            // Keys it does not read, or twice.
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"label"}]}"#.to_string(),
            r#"{"parameters":{},"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1],"parameters":{}}]}"#.to_string(),
            r#"{"id":"a","id":"b","inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","name":"y","shape":[1,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            // Values it does not read.
            r#"{"id":"a\"b","inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"id":null,"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[-1,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1.0,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":["1"]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[null]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1e39]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[0.1234567890123456789]}]}"#.to_string(),
            format!(r#"{{"inputs":[{{"name":"x","shape":[1,1],"datatype":"FP32","data":{wide}}}]}}"#),
            // Not one input, or not all of it.
            r#"{"inputs":[]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]},{"name":"y","shape":[1,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32"}]}"#.to_string(),
            r#"{"id":"a"}"#.to_string(),
            // Malformed.
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1,]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[01]}]}"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]} x"#.to_string(),
            r#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]"#.to_string(),
            "{\"inputs\":[{\"name\":\"\u{1}\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]}]}".to_string(),
        ] {
            assert_eq!(fast_path_agrees(body.as_bytes()), Ok(false), "{body}");
        }
        // Invalid UTF-8 in a string.
        let mut body = br#"{"id":"#.to_vec();
        body.extend_from_slice(b"\"\xff\",\"inputs\":[]}");
        assert_eq!(fast_path_agrees(&body), Ok(false));
    }

    fn message(r: Result<Parsed, ValidationError>) -> String {
        r.expect_err("refused").message
    }

    #[test]
    fn flat_and_nested_data_give_the_same_row_major_matrix_for_fp32_and_fp64() {
        for (datatype, data) in [
            ("FP32", json!([1, 2.5, 3, 4])),
            ("FP64", json!([[1, 2.5], [3, 4]])),
            ("FP32", json!([[[1, 2.5]], [[3, 4]]])),
        ] {
            let p = parse(input(json!([2, 2]), datatype, data)).expect("valid");
            assert_eq!(
                (p.matrix.rows, p.matrix.values),
                (2, vec![1.0, 2.5, 3.0, 4.0])
            );
            assert_eq!(
                p.outputs,
                vec![
                    Wanted {
                        output: 0,
                        binary: false
                    },
                    Wanted {
                        output: 1,
                        binary: false
                    }
                ]
            );
        }
    }

    #[test]
    fn binary_inputs_are_read_little_endian_in_both_widths() {
        let f32s: Vec<u8> = [1f32, 2.5, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let body = json!({"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32",
                          "parameters": {"binary_data_size": 16}}],
                          "parameters": {"binary_data_output": true}});
        let p = parse_with(body, &f32s).expect("valid");
        assert_eq!(p.matrix.values, vec![1.0, 2.5, 3.0, 4.0]);
        assert!(p.outputs.iter().all(|w| w.binary));

        let f64s: Vec<u8> = [1f64, 2.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        let body = json!({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64",
                          "parameters": {"binary_data_size": 16}}]});
        assert_eq!(
            parse_with(body, &f64s).expect("valid").matrix.values,
            vec![1.0, 2.5]
        );
    }

    #[test]
    fn outputs_select_what_comes_back_and_each_can_be_binary() {
        let mut body = input(json!([1, 2]), "FP32", json!([1, 2]));
        body["outputs"] = json!([{"name": "probabilities", "parameters": {"binary_data": true}}]);
        let p = parse(body).expect("valid");
        assert_eq!(
            p.outputs,
            vec![Wanted {
                output: 1,
                binary: true
            }]
        );

        let mut body = input(json!([1, 2]), "FP32", json!([1, 2]));
        body["outputs"] = json!([{"name": "scores"}]);
        assert_eq!(
            message(parse(body)),
            "unknown output \"scores\": the model's outputs are \"label\", \"probabilities\""
        );
    }

    #[test]
    fn every_bad_input_is_refused_with_a_message_naming_it() {
        let cases = [
            (
                input(json!([1, 2]), "INT32", json!([1, 2])),
                "datatype \"INT32\"",
            ),
            (
                input(json!([2, 2]), "FP32", json!([1, 2, 3])),
                "needs 4 values; data has 3",
            ),
            (
                input(json!([-1, 2]), "FP32", json!([1, 2])),
                "cannot be negative",
            ),
            (
                input(json!([1, -2]), "FP32", json!([1, 2])),
                "cannot be negative",
            ),
            (
                input(json!([9_000_000_000_000_000i64, 2]), "FP32", json!([1, 2])),
                "at most 3",
            ),
            (
                input(json!([1, 3]), "FP32", json!([1, 2, 3])),
                "expected 2 features per row, got 3",
            ),
            (input(json!([0, 2]), "FP32", json!([])), "no rows"),
            (
                input(json!([2]), "FP32", json!([1, 2])),
                "the model takes [rows, 2]",
            ),
            (
                input(json!([1, 2]), "FP32", json!([1, "x"])),
                "data[1] is a string",
            ),
            (
                input(json!([1, 2]), "FP32", json!([[1, null]])),
                "data[1] is null",
            ),
            (
                input(json!([1, 2]), "FP32", json!([1e39, 1])),
                "row 0, feature \"a\" is not a finite",
            ),
            (json!({"inputs": []}), "the request has 0"),
            (
                json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}),
                "unknown input \"x\"",
            ),
            (
                json!({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32"}]}),
                "no `data` and no `binary_data_size`",
            ),
        ];
        for (body, expected) in cases {
            let shown = body.to_string();
            let m = message(parse(body));
            assert!(m.contains(expected), "{shown}: {m}");
        }
        // Names a client sends are cut short in messages.
        let long = "x".repeat(10_000);
        let body = json!({"inputs": [{"name": long, "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]});
        assert!(message(parse(body)).len() < 200);
    }

    #[test]
    fn binary_sizes_must_match_the_shape_and_the_body() {
        let body = |size: u64| {
            json!({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32",
                   "parameters": {"binary_data_size": size}}]})
        };
        assert!(message(parse_with(body(8), &[0; 4])).contains("larger than the 4 bytes"));
        assert!(message(parse_with(body(4), &[0; 4])).contains("take 8 bytes"));
        assert!(
            message(parse_with(body(8), &[0; 12]))
                .contains("4 bytes of binary data that no input claims")
        );
        let nan: Vec<u8> = [1f32, f32::NAN]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert!(message(parse_with(body(8), &nan)).contains("row 0, feature \"b\""));
    }

    #[test]
    fn the_header_length_splits_the_body_and_may_not_pass_its_end() {
        assert_eq!(
            split(b"{}xy", Some("2")).expect("valid"),
            (&b"{}"[..], &b"xy"[..])
        );
        assert_eq!(split(b"{}", None).expect("valid"), (&b"{}"[..], &b""[..]));
        let e = split(b"{}", Some("3")).expect_err("past the end");
        assert_eq!(
            e.message,
            "Inference-Header-Content-Length 3 is past the end of the 2-byte body"
        );
        assert!(split(b"{}", Some("-1")).is_err());
    }
}

//! Parsing `/predict` bodies into a row-major `f32` matrix in the manifest's feature order.
//!
//! A row is either an object keyed by feature name or an array in manifest order. Values must be
//! JSON numbers that stay finite as `f32`; anything else is a validation error naming the feature.
//! Plain numeric rows take the fast path ([`crate::routes::fast_json`]); everything else goes through
//! serde_json and [`PredictRequest::into_matrix`].

use crate::error::{ValidationCode, ValidationError};
use crate::model::features::{FeatureMatrix, FeatureSchema, MissingPolicy, Preprocessing};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

/// The body of `POST /predict`: exactly one of `features` and `instances`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PredictRequest {
    /// One row.
    features: Option<RowInput>,
    /// A batch: at least one row, at most `limits.max_batch_rows` (default 1000).
    #[schema(min_items = 1)]
    instances: Option<Vec<RowInput>>,
}

/// A parsed `/predict` body.
#[derive(Debug)]
pub(crate) enum PredictBody {
    /// Plain numeric rows, valid as sent and already laid out (the fast path).
    Ready(FeatureMatrix),
    /// Anything else, as sent: `into_matrix` validates it.
    Sent(PredictRequest),
}

impl PredictBody {
    /// Parses a body: plain numeric rows through the fast path, everything else (and every
    /// error) through serde_json.
    pub(crate) fn from_json(body: &[u8], how: Preprocessing<'_>) -> serde_json::Result<Self> {
        match crate::routes::fast_json::parse(body, how.schema.len(), how.max_rows) {
            Some(matrix) => Ok(Self::Ready(matrix)),
            None => serde_json::from_slice(body).map(Self::Sent),
        }
    }

    /// Rows in this body, before validation (0 when neither field is given).
    pub(crate) fn row_count(&self) -> usize {
        match self {
            Self::Ready(m) => m.rows,
            Self::Sent(r) => r.row_count(),
        }
    }

    /// Validates the body and lays its rows out for the model.
    pub(crate) fn into_matrix(
        self,
        how: Preprocessing<'_>,
    ) -> Result<FeatureMatrix, ValidationError> {
        match self {
            Self::Ready(m) => Ok(m),
            Self::Sent(r) => r.into_matrix(how),
        }
    }
}

/// Whether the fast path agrees with serde_json on `body`: whenever the fast path accepts a body,
/// serde_json and validation must accept it too and give the same matrix, bit for bit (when it
/// declines, serde_json alone decides). `Ok(true)` when the fast path answered. The fast path's
/// tests and the fuzz target `predict_body` (crates/fuzz) check this.
pub fn fast_path_agrees(body: &[u8], how: Preprocessing<'_>) -> Result<bool, String> {
    let Some(fast) = crate::routes::fast_json::parse(body, how.schema.len(), how.max_rows) else {
        return Ok(false);
    };
    let sent: PredictRequest = serde_json::from_slice(body)
        .map_err(|e| format!("the fast path accepted a body serde_json refuses: {e}"))?;
    let slow = sent.into_matrix(how).map_err(|e| {
        format!(
            "the fast path accepted a body validation refuses: {}",
            e.message
        )
    })?;
    let bits = |m: &FeatureMatrix| m.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    if (fast.rows, bits(&fast)) != (slow.rows, bits(&slow))
        || !fast.imputed.is_empty()
        || !slow.imputed.is_empty()
    {
        return Err(format!(
            "the paths disagree: fast {} rows {:?}, serde {} rows {:?}",
            fast.rows, fast.values, slow.rows, slow.values
        ));
    }
    Ok(true)
}

/// One row as sent.
#[derive(Debug, PartialEq)]
pub(crate) enum RowInput {
    Ordered(Vec<FeatureValue>),
    Named(Vec<(String, FeatureValue)>),
}

impl ToSchema for RowInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Row")
    }
}

impl PartialSchema for RowInput {
    fn schema() -> RefOr<Schema> {
        let value = || FeatureValue::schema();
        OneOfBuilder::new()
            .description(Some(
                "One row: every feature by name, or every feature's value in the manifest's \
                 feature order (`GET /model`)",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .additional_properties(Some(value())),
            )
            .item(ArrayBuilder::new().items(value()))
            .into()
    }
}

/// One value as sent: only numbers are accepted, the rest is kept to explain the rejection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FeatureValue {
    Number(f64),
    Null,
    Other(&'static str),
}

impl PartialSchema for FeatureValue {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
            .description(Some(
                "A feature's value: a number within the 32-bit float range; null counts as \
                 missing",
            ))
            .into()
    }
}

const LISTED_NAMES: usize = 5;

fn list_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let mut out = names
        .iter()
        .take(LISTED_NAMES)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED_NAMES {
        out.push_str(&format!(" and {} more", names.len() - LISTED_NAMES));
    }
    out
}

impl PredictRequest {
    /// Rows in this request, before validation (0 when neither field is given).
    pub(crate) fn row_count(&self) -> usize {
        match (&self.features, &self.instances) {
            (Some(_), None) => 1,
            (None, Some(rows)) => rows.len(),
            _ => 0,
        }
    }

    /// Validates the request and lays its rows out for the model.
    pub(crate) fn into_matrix(
        self,
        how: Preprocessing<'_>,
    ) -> Result<FeatureMatrix, ValidationError> {
        let (schema, max_rows) = (how.schema, how.max_rows);
        let rows: Vec<(Option<usize>, RowInput)> = match (self.features, self.instances) {
            (Some(row), None) => vec![(None, row)],
            (None, Some(rows)) => {
                if rows.is_empty() {
                    return Err(ValidationError::new(
                        ValidationCode::EmptyBatch,
                        "`instances` is empty",
                    ));
                }
                if rows.len() > max_rows {
                    return Err(ValidationError::new(
                        ValidationCode::BatchTooLarge,
                        format!(
                            "{} rows in `instances`, at most {max_rows} are accepted",
                            rows.len()
                        ),
                    ));
                }
                rows.into_iter()
                    .enumerate()
                    .map(|(i, r)| (Some(i), r))
                    .collect()
            }
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    ValidationCode::InvalidRequest,
                    "give either `features` (one row) or `instances` (a batch), not both",
                ));
            }
            (None, None) => {
                return Err(ValidationError::new(
                    ValidationCode::InvalidRequest,
                    "the body needs `features` (one row) or `instances` (a batch)",
                ));
            }
        };
        let n = schema.len();
        let mut values = vec![0f32; rows.len() * n];
        let mut imputed = Vec::new();
        let count = rows.len();
        for ((at, row), out) in rows.into_iter().zip(values.chunks_exact_mut(n)) {
            let missing = fill_row(row, schema, out).map_err(|e| e.in_row(at))?;
            if missing.is_empty() {
                continue;
            }
            match how.missing {
                MissingPolicy::Impute => {
                    for &i in &missing {
                        out[i] = schema.means()[i];
                    }
                    imputed.extend(missing);
                }
                MissingPolicy::Reject => {
                    let names = missing.iter().map(|&i| schema.names()[i].as_str());
                    let mut e = ValidationError::new(
                        ValidationCode::MissingFeature,
                        format!("missing features: {}", list_names(names)),
                    );
                    e.missing = missing;
                    return Err(e.in_row(at));
                }
            }
        }
        Ok(FeatureMatrix {
            rows: count,
            values,
            imputed,
        })
    }
}

/// Fills `out` from one row and returns the indices of missing (absent or null) features.
fn fill_row(
    row: RowInput,
    schema: &FeatureSchema,
    out: &mut [f32],
) -> Result<Vec<usize>, ValidationError> {
    let mut missing = Vec::new();
    match row {
        RowInput::Ordered(vals) => {
            if vals.len() != schema.len() {
                return Err(ValidationError::new(
                    ValidationCode::WrongFeatureCount,
                    format!("expected {} features, got {}", schema.len(), vals.len()),
                ));
            }
            for (i, v) in vals.into_iter().enumerate() {
                match v {
                    FeatureValue::Null => missing.push(i),
                    v => out[i] = to_f32(v, &schema.names()[i])?,
                }
            }
        }
        RowInput::Named(pairs) => {
            let mut seen = vec![false; schema.len()];
            let mut unknown = Vec::new();
            let mut parsed = Vec::with_capacity(pairs.len());
            for (name, v) in &pairs {
                match schema.position(name) {
                    Some(i) if seen[i] => {
                        return Err(ValidationError::new(
                            ValidationCode::InvalidRequest,
                            format!("feature {name:?} is given twice"),
                        ));
                    }
                    Some(i) => {
                        seen[i] = true;
                        parsed.push((i, *v));
                    }
                    None => unknown.push(name.as_str()),
                }
            }
            if !unknown.is_empty() {
                return Err(ValidationError::new(
                    ValidationCode::UnknownFeature,
                    format!("unknown features: {}", list_names(unknown.into_iter())),
                ));
            }
            for (i, v) in parsed {
                match v {
                    FeatureValue::Null => missing.push(i),
                    v => out[i] = to_f32(v, &schema.names()[i])?,
                }
            }
            missing.extend(
                seen.iter()
                    .enumerate()
                    .filter(|(_, s)| !**s)
                    .map(|(i, _)| i),
            );
            missing.sort_unstable();
        }
    }
    Ok(missing)
}

fn to_f32(v: FeatureValue, name: &str) -> Result<f32, ValidationError> {
    match v {
        FeatureValue::Number(x) => {
            let y = x as f32;
            if y.is_finite() {
                Ok(y)
            } else {
                Err(ValidationError::new(
                    ValidationCode::NonFiniteValue,
                    format!("feature {name:?} = {x} is outside the 32-bit float range"),
                ))
            }
        }
        FeatureValue::Null => Err(ValidationError::new(
            ValidationCode::MissingFeature,
            format!("missing features: {name:?}"),
        )),
        FeatureValue::Other(kind) => Err(ValidationError::new(
            ValidationCode::NonNumericValue,
            format!("feature {name:?} is {kind}, expected a number"),
        )),
    }
}

impl<'de> Deserialize<'de> for FeatureValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FeatureValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Number(v as f64))
            }
            fn visit_unit<E>(self) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Null)
            }
            fn visit_none<E>(self) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Other("a boolean"))
            }
            fn visit_str<E>(self, _: &str) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Other("a string"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FeatureValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FeatureValue::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FeatureValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FeatureValue::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RowInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RowInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row: an object of feature name to number, or an array of numbers in manifest order")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RowInput, A::Error> {
                let mut vals = Vec::with_capacity(seq.size_hint().unwrap_or(32));
                while let Some(v) = seq.next_element::<FeatureValue>()? {
                    vals.push(v);
                }
                Ok(RowInput::Ordered(vals))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowInput, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(32));
                while let Some((k, v)) = map.next_entry::<String, FeatureValue>()? {
                    pairs.push((k, v));
                }
                Ok(RowInput::Named(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> FeatureSchema {
        FeatureSchema::new(
            vec!["a".into(), "b".into(), "c".into()],
            vec![10.0, 20.0, 30.0],
        )
    }

    fn parse_with(
        body: serde_json::Value,
        missing: MissingPolicy,
    ) -> Result<FeatureMatrix, ValidationError> {
        let req: PredictRequest = serde_json::from_value(body).expect("deserializes");
        req.into_matrix(Preprocessing {
            schema: &schema(),
            max_rows: 2,
            missing,
        })
    }

    fn parse(body: serde_json::Value) -> Result<FeatureMatrix, ValidationError> {
        parse_with(body, MissingPolicy::Reject)
    }

    fn code(body: serde_json::Value) -> ValidationCode {
        parse(body).expect_err("should be rejected").code
    }

    #[test]
    fn named_and_ordered_rows_give_the_same_matrix() {
        let named = parse(json!({"features": {"c": 3, "a": 1.5, "b": -2}})).expect("valid");
        let ordered = parse(json!({"features": [1.5, -2, 3]})).expect("valid");
        assert_eq!(named, ordered);
        assert_eq!(
            named,
            FeatureMatrix {
                rows: 1,
                values: vec![1.5, -2.0, 3.0],
                imputed: vec![]
            }
        );
    }

    #[test]
    fn a_batch_mixes_both_row_forms_in_order() {
        let m = parse(json!({"instances": [[1, 2, 3], {"a": 4, "b": 5, "c": 6}]})).expect("valid");
        assert_eq!(
            m,
            FeatureMatrix {
                rows: 2,
                values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                imputed: vec![]
            }
        );
    }

    #[test]
    fn each_bad_input_gets_its_code() {
        assert_eq!(
            code(json!({"features": [1, 2]})),
            ValidationCode::WrongFeatureCount
        );
        assert_eq!(
            code(json!({"features": {"a": 1, "b": 2, "c": 3, "zz": 4}})),
            ValidationCode::UnknownFeature
        );
        assert_eq!(
            code(json!({"features": {"a": 1, "b": 2}})),
            ValidationCode::MissingFeature
        );
        assert_eq!(
            code(json!({"features": {"a": 1, "b": null, "c": 3}})),
            ValidationCode::MissingFeature
        );
        assert_eq!(
            code(json!({"features": [1, "2", 3]})),
            ValidationCode::NonNumericValue
        );
        assert_eq!(
            code(json!({"features": [1, true, 3]})),
            ValidationCode::NonNumericValue
        );
        assert_eq!(
            code(json!({"features": [1, [2], 3]})),
            ValidationCode::NonNumericValue
        );
        assert_eq!(
            code(json!({"features": [1, 1e300, 3]})),
            ValidationCode::NonFiniteValue
        );
        assert_eq!(code(json!({"instances": []})), ValidationCode::EmptyBatch);
        assert_eq!(
            code(json!({"instances": [[1, 2, 3], [1, 2, 3], [1, 2, 3]]})),
            ValidationCode::BatchTooLarge
        );
        assert_eq!(code(json!({})), ValidationCode::InvalidRequest);
        assert_eq!(
            code(json!({"features": [1, 2, 3], "instances": [[1, 2, 3]]})),
            ValidationCode::InvalidRequest
        );
    }

    #[test]
    fn messages_name_the_feature_and_the_row() {
        let e = parse(json!({"instances": [[1, 2, 3], [1, "x", 3]]})).expect_err("rejected");
        assert_eq!(
            e.message,
            "instances[1]: feature \"b\" is a string, expected a number"
        );
        let e = parse(json!({"features": {"a": 1}})).expect_err("rejected");
        assert_eq!(e.message, "missing features: \"b\", \"c\"");
    }

    #[test]
    fn missing_values_are_rejected_with_their_names_or_imputed_with_the_training_mean() {
        let e = parse(json!({"features": {"a": 1, "b": null}})).expect_err("rejected");
        assert_eq!(
            (e.code, e.missing.clone()),
            (ValidationCode::MissingFeature, vec![1, 2])
        );
        assert_eq!(e.message, "missing features: \"b\", \"c\"");
        let e = parse(json!({"features": [1, null, 3]})).expect_err("rejected");
        assert_eq!(e.missing, vec![1]);

        let m = parse_with(
            json!({"instances": [{"a": 1, "b": null}, [null, 2, 3]]}),
            MissingPolicy::Impute,
        )
        .expect("imputed");
        assert_eq!(m.values, vec![1.0, 20.0, 30.0, 10.0, 2.0, 3.0]);
        assert_eq!(m.imputed, vec![1, 2, 0]);
        // Imputation never hides a non-numeric value.
        let e = parse_with(json!({"features": [1, "x", null]}), MissingPolicy::Impute)
            .expect_err("rejected");
        assert_eq!(e.code, ValidationCode::NonNumericValue);
    }

    #[test]
    fn a_row_that_is_neither_object_nor_array_is_a_data_error() {
        let err =
            serde_json::from_str::<PredictRequest>(r#"{"features": 5}"#).expect_err("rejected");
        assert!(err.is_data(), "{err}");
        let err =
            serde_json::from_str::<PredictRequest>(r#"{"features": [1, 2"#).expect_err("rejected");
        assert!(err.is_eof() || err.is_syntax(), "{err}");
        let err = serde_json::from_str::<PredictRequest>(r#"{"rows": []}"#).expect_err("rejected");
        assert!(err.is_data(), "{err}");
    }
}

//! The `/predict` answer, written straight into its body.
//!
//! [`write`] writes a [`PredictResponse`] as the same bytes as its derived `Serialize` (which
//! stays: it is the reference a test below holds `write` to, and its schema documents the
//! answer), at less than half the instructions for a 100-row answer (docs/performance.md,
//! "ONNX Runtime alone, and where a 100-row request's time goes"). serde_json escapes every key
//! and class name of every row and grows its buffer write by write; here the class names are
//! escaped once per answer, the keys are constants, the buffer is sized once, and only the
//! numbers and the answer's own strings go through serde_json (so they are written exactly as it
//! writes them).

use super::{PredictResponse, RowPrediction};

/// The answer's JSON.
pub(super) fn write(answer: &PredictResponse<'_>) -> serde_json::Result<Vec<u8>> {
    let mut names = EscapedClasses::default();
    let per_row = answer.predictions.first().map_or(0, |p| {
        // The fixed keys (about 70 bytes), the label and the class names, up to 16 bytes a number.
        let classes = p.probabilities.classes;
        80 + 2 * classes.iter().map(String::len).sum::<usize>() + 16 * (classes.len() + 1)
    });
    let mut out = Vec::with_capacity(
        128 + answer.model.len()
            + answer.version.len()
            + answer.request_id.len()
            + per_row * answer.predictions.len(),
    );
    out.extend_from_slice(b"{\"model\":");
    serde_json::to_writer(&mut out, answer.model)?;
    out.extend_from_slice(b",\"version\":");
    serde_json::to_writer(&mut out, answer.version)?;
    out.extend_from_slice(b",\"request_id\":");
    serde_json::to_writer(&mut out, answer.request_id)?;
    out.extend_from_slice(b",\"predictions\":[");
    for (i, p) in answer.predictions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        row(&mut out, p, &mut names)?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// One row: `{"label":…,"class_index":…,"probabilities":{…},"confidence":…}`.
fn row<'a>(
    out: &mut Vec<u8>,
    p: &RowPrediction<'a>,
    names: &mut EscapedClasses<'a>,
) -> serde_json::Result<()> {
    let classes = p.probabilities.classes;
    let escaped = names.of(classes)?;
    out.extend_from_slice(b"{\"label\":");
    // The label is the predicted class's name, taken from `classes` by the handler: the same
    // string, so its escaped form is at hand (any other label is escaped here).
    match classes.get(p.class_index) {
        Some(c) if std::ptr::eq(c.as_str(), p.label) => {
            out.extend_from_slice(&escaped[p.class_index])
        }
        _ => serde_json::to_writer(&mut *out, p.label)?,
    }
    out.extend_from_slice(b",\"class_index\":");
    serde_json::to_writer(&mut *out, &p.class_index)?;
    out.extend_from_slice(b",\"probabilities\":{");
    for (k, (name, value)) in escaped.iter().zip(p.probabilities.values).enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name);
        out.push(b':');
        serde_json::to_writer(&mut *out, value)?;
    }
    out.extend_from_slice(b"},\"confidence\":");
    serde_json::to_writer(&mut *out, &p.confidence)?;
    out.push(b'}');
    Ok(())
}

/// The class names as JSON strings, escaped once for all the rows that share them.
#[derive(Default)]
struct EscapedClasses<'a> {
    classes: Option<&'a [String]>,
    escaped: Vec<Vec<u8>>,
}

impl<'a> EscapedClasses<'a> {
    fn of(&mut self, classes: &'a [String]) -> serde_json::Result<&[Vec<u8>]> {
        if !self.classes.is_some_and(|c| std::ptr::eq(c, classes)) {
            self.escaped = classes
                .iter()
                .map(serde_json::to_vec)
                .collect::<serde_json::Result<_>>()?;
            self.classes = Some(classes);
        }
        Ok(&self.escaped)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Probabilities;
    use super::*;

    /// `write` and serde_json's derived serialisation of the same answer, as text.
    fn both(classes: &[&str], rows: &[(usize, Vec<f32>)]) -> (String, String) {
        let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
        let answer = PredictResponse {
            model: "breast-cancer",
            version: "1.0.0",
            request_id: "6116f8e2-\"id\"",
            predictions: rows
                .iter()
                .map(|(class_index, values)| RowPrediction {
                    label: &classes[*class_index],
                    class_index: *class_index,
                    probabilities: Probabilities {
                        classes: &classes,
                        values,
                    },
                    confidence: values.iter().copied().fold(0f32, f32::max),
                })
                .collect(),
        };
        let ours = write(&answer).expect("writes");
        let serde = serde_json::to_vec(&answer).expect("serializes");
        (
            String::from_utf8(ours).expect("utf-8"),
            String::from_utf8(serde).expect("utf-8"),
        )
    }

    #[test]
    fn the_answer_is_byte_for_byte_what_serde_json_writes() {
        let rows: Vec<(usize, Vec<f32>)> = (0..100)
            .map(|i| {
                let p = (i as f32 * 0.0173).fract();
                (usize::from(p < 0.5), vec![p, 1.0 - p])
            })
            .collect();
        let (ours, serde) = both(&["malignant", "benign"], &rows);
        assert_eq!(ours, serde);
        let (ours, serde) = both(&["malignant", "benign"], &rows[..1]);
        assert_eq!(ours, serde);
    }

    #[test]
    fn odd_names_and_numbers_are_written_as_serde_json_writes_them() {
        let rows = vec![
            (2, vec![0.0, 1e-9, 1.0]),
            (0, vec![f32::MIN_POSITIVE, 0.1, 3.4e38]),
            (1, vec![f32::NAN, f32::INFINITY, -0.0]),
        ];
        let (ours, serde) = both(&["a \"quoted\" class", "tab\tand\\slash", "ünï€ode"], &rows);
        assert_eq!(ours, serde);
        let (ours, serde) = both(&["only"], &[]);
        assert_eq!(ours, serde);
    }

    #[test]
    fn a_label_that_is_not_the_class_slice_itself_is_escaped_on_its_own() {
        let classes = vec!["a".to_string(), "b\"".to_string()];
        let label = String::from("b\"");
        let answer = PredictResponse {
            model: "m",
            version: "v",
            request_id: "r",
            predictions: vec![RowPrediction {
                label: &label,
                class_index: 1,
                probabilities: Probabilities {
                    classes: &classes,
                    values: &[0.25, 0.75],
                },
                confidence: 0.75,
            }],
        };
        assert_eq!(
            write(&answer).expect("writes"),
            serde_json::to_vec(&answer).expect("serializes")
        );
    }
}

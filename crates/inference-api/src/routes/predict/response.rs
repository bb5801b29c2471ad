//! The `/predict` answer, written straight into its body.
//!
//! `{"model", "version", "request_id", "predictions": [{"label", "class_index", "probabilities":
//! {class: p, ...}, "confidence"}, ...]}`: the same bytes serde_json writes for the derived
//! structs (a test below holds the two against each other), at about a third of the instructions
//! for a 100-row answer (docs/performance.md, "Where a 100-row request's time goes"). serde_json
//! escapes every key and class name of every row and grows its buffer write by write; here the
//! class names are escaped once per answer, the keys are constants, the buffer is sized once, and
//! only the numbers go through serde_json (so they are formatted exactly as it formats them).

/// One row's prediction.
pub(super) struct RowPrediction<'a> {
    pub(super) class_index: usize,
    /// Probabilities in class order.
    pub(super) probabilities: &'a [f32],
    pub(super) confidence: f32,
}

/// The answer's JSON: `classes` are the manifest's class names, in class order.
pub(super) fn write(
    model: &str,
    version: &str,
    request_id: &str,
    classes: &[String],
    predictions: &[RowPrediction<'_>],
) -> serde_json::Result<Vec<u8>> {
    let names = classes
        .iter()
        .map(serde_json::to_vec)
        .collect::<serde_json::Result<Vec<_>>>()?;
    let names_len: usize = names.iter().map(Vec::len).sum();
    // Each row: its fixed keys (about 70 bytes), the label, the class names as keys, and up to 16
    // bytes per number.
    let row =
        80 + names.iter().map(Vec::len).max().unwrap_or(0) + names_len + 16 * (classes.len() + 2);
    let mut out = Vec::with_capacity(
        96 + model.len() + version.len() + request_id.len() + row * predictions.len(),
    );
    out.extend_from_slice(b"{\"model\":");
    serde_json::to_writer(&mut out, model)?;
    out.extend_from_slice(b",\"version\":");
    serde_json::to_writer(&mut out, version)?;
    out.extend_from_slice(b",\"request_id\":");
    serde_json::to_writer(&mut out, request_id)?;
    out.extend_from_slice(b",\"predictions\":[");
    for (i, p) in predictions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"label\":");
        out.extend_from_slice(&names[p.class_index]);
        out.extend_from_slice(b",\"class_index\":");
        serde_json::to_writer(&mut out, &p.class_index)?;
        out.extend_from_slice(b",\"probabilities\":{");
        for (k, (name, value)) in names.iter().zip(p.probabilities).enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(name);
            out.push(b':');
            serde_json::to_writer(&mut out, value)?;
        }
        out.extend_from_slice(b"},\"confidence\":");
        serde_json::to_writer(&mut out, &p.confidence)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// What serde_json writes for the answer: the reference [`write`] is held to.
#[cfg(test)]
fn with_serde(
    model: &str,
    version: &str,
    request_id: &str,
    classes: &[String],
    predictions: &[RowPrediction<'_>],
) -> Vec<u8> {
    use serde::Serialize;
    use serde::ser::SerializeMap;

    #[derive(Serialize)]
    struct Answer<'a> {
        model: &'a str,
        version: &'a str,
        request_id: &'a str,
        predictions: Vec<Row<'a>>,
    }
    #[derive(Serialize)]
    struct Row<'a> {
        label: &'a str,
        class_index: usize,
        probabilities: Probabilities<'a>,
        confidence: f32,
    }
    struct Probabilities<'a>(&'a [String], &'a [f32]);
    impl Serialize for Probabilities<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (c, p) in self.0.iter().zip(self.1) {
                map.serialize_entry(c, p)?;
            }
            map.end()
        }
    }
    serde_json::to_vec(&Answer {
        model,
        version,
        request_id,
        predictions: predictions
            .iter()
            .map(|p| Row {
                label: &classes[p.class_index],
                class_index: p.class_index,
                probabilities: Probabilities(classes, p.probabilities),
                confidence: p.confidence,
            })
            .collect(),
    })
    .expect("serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(classes: &[&str], rows: &[(usize, Vec<f32>)]) -> (String, String) {
        let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
        let predictions: Vec<RowPrediction<'_>> = rows
            .iter()
            .map(|(class_index, probabilities)| RowPrediction {
                class_index: *class_index,
                probabilities,
                confidence: probabilities.iter().copied().fold(0f32, f32::max),
            })
            .collect();
        let (model, version, id) = ("breast-cancer", "1.0.0", "6116f8e2-req");
        let ours = write(model, version, id, &classes, &predictions).expect("writes");
        let serde = with_serde(model, version, id, &classes, &predictions);
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
}

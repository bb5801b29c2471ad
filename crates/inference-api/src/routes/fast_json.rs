//! A fast path for the commonest `/predict` bodies: rows as arrays of plain numbers,
//! `{"features": [17.99, ...]}` and `{"instances": [[17.99, ...], ...]}`, read straight into the
//! model's input matrix ([`parse`]); and for the commonest V2 inference request, one JSON tensor
//! and maybe an id ([`v2_request`]).
//!
//! serde_json reads each number through its visitors into a row of values that then has to be
//! laid out again in the matrix; this scanner writes the `f32`s straight into the matrix (the
//! difference, measured: docs/performance.md, "Instructions per request"). It accepts
//! only bodies that are valid as they stand and that it reads exactly as serde_json would, and
//! answers `None` for everything else (other keys, named rows, nulls, strings, a row of the wrong
//! width, an empty or over-long batch, a value outside the f32 range, any malformed input,
//! numbers it cannot convert exactly). Those go through serde_json and
//! [`PredictRequest::into_matrix`](super::body::PredictRequest::into_matrix): the one place
//! that parses every other body and explains every error.

use crate::model::features::FeatureMatrix;

/// The rows of `body` laid out for the model, if `body` is one of the two plain forms with
/// `width` numbers per row, 1 to `max_rows` rows, and every number converts exactly to a finite
/// f32.
pub(crate) fn parse(body: &[u8], width: usize, max_rows: usize) -> Option<FeatureMatrix> {
    // Typical values take about eight bytes ("0.06232, "): one allocation for the usual body,
    // growing if the numbers are shorter, and never more than the largest valid batch.
    let room = (body.len() / 8).min(width.saturating_mul(max_rows));
    let mut c = Cursor {
        b: body,
        i: 0,
        values: Vec::with_capacity(room),
    };
    c.eat(b'{')?;
    c.eat(b'"')?;
    let rest = &c.b[c.i..];
    let rows = if rest.starts_with(b"features\"") {
        c.i += b"features\"".len();
        c.eat(b':')?;
        c.row(width)?;
        1
    } else if rest.starts_with(b"instances\"") {
        c.i += b"instances\"".len();
        c.eat(b':')?;
        c.eat(b'[')?;
        let mut rows = 0;
        loop {
            if rows == max_rows {
                return None;
            }
            c.row(width)?;
            rows += 1;
            match c.peek()? {
                b',' => c.i += 1,
                b']' => {
                    c.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        rows
    } else {
        return None;
    };
    c.eat(b'}')?;
    c.skip_whitespace();
    (c.i == c.b.len()).then_some(FeatureMatrix {
        rows,
        values: c.values,
        imputed: Vec::new(),
    })
}

/// 10^0 ..= 10^22: every power of ten an f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
    values: Vec<f32>,
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        self.i = skip_whitespace(self.b, self.i);
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.i += 1)
    }

    /// One row of exactly `width` numbers, appended to `values`. The position is kept in a local
    /// while the numbers are read: with it in `self` it would be stored and reloaded around each
    /// push.
    fn row(&mut self, width: usize) -> Option<()> {
        self.eat(b'[')?;
        self.values.reserve(width);
        let b = self.b;
        let mut i = self.i;
        for k in 0..width {
            if k > 0 {
                i = skip_whitespace(b, i);
                if b.get(i) != Some(&b',') {
                    return None;
                }
                i += 1;
            }
            i = push_number(b, skip_whitespace(b, i), &mut self.values)?;
        }
        self.i = i;
        self.eat(b']')
    }
}

/// The commonest V2 inference request as sent: an optional `id` and one input, with `data`
/// already read as f32 (in row-major order, however it was nested).
#[derive(Debug)]
pub(crate) struct V2Request<'a> {
    pub(crate) id: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) shape: Vec<i64>,
    pub(crate) datatype: &'a str,
    pub(crate) data: Vec<f32>,
}

/// Deepest `data` nesting the fast path reads (a `[rows, features]` tensor needs 2).
const MAX_DATA_DEPTH: usize = 4;

/// `body` as a [`V2Request`], if it is exactly `{"inputs": [{"name", "shape", "datatype",
/// "data"}]}` plus maybe `"id"`, keys in any order and each once; strings without escapes;
/// `shape` non-negative integers; `data` numbers (nested in arrays up to [`MAX_DATA_DEPTH`] deep)
/// that each convert exactly to a finite f32, as in [`parse`]. `None` for everything else
/// (`outputs`, `parameters`, other keys, escapes, nulls, any malformed input): serde_json reads
/// those, to the same request, and explains every refusal.
pub(crate) fn v2_request(body: &[u8]) -> Option<V2Request<'_>> {
    let mut c = Cursor {
        b: body,
        i: 0,
        values: Vec::new(),
    };
    let mut id = None;
    let mut input = None;
    c.object(|c, key| match key {
        "id" if id.is_none() => {
            id = Some(c.plain_string()?);
            Some(())
        }
        "inputs" if input.is_none() => {
            c.eat(b'[')?;
            input = Some(c.v2_input()?);
            c.eat(b']')
        }
        _ => None,
    })?;
    c.skip_whitespace();
    if c.i != c.b.len() {
        return None;
    }
    let (name, shape, datatype) = input?;
    Some(V2Request {
        id,
        name,
        shape,
        datatype,
        data: c.values,
    })
}

impl<'a> Cursor<'a> {
    /// An object: `field` reads the value of each key (and refuses keys it does not know).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        loop {
            self.skip_whitespace();
            let key = self.plain_string()?;
            self.eat(b':')?;
            self.skip_whitespace();
            field(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// One input object: its name, shape and datatype; its data goes to `values`.
    fn v2_input(&mut self) -> Option<(&'a str, Vec<i64>, &'a str)> {
        let (mut name, mut shape, mut datatype, mut data) = (None, None, None, false);
        self.object(|c, key| {
            match key {
                "name" if name.is_none() => name = Some(c.plain_string()?),
                "datatype" if datatype.is_none() => datatype = Some(c.plain_string()?),
                "shape" if shape.is_none() => shape = Some(c.dimensions()?),
                "data" if !data => {
                    c.values.reserve(c.b.len() / 8);
                    c.nested_numbers(MAX_DATA_DEPTH)?;
                    data = true;
                }
                _ => return None,
            }
            Some(())
        })?;
        data.then_some(())?;
        Some((name?, shape?, datatype?))
    }

    /// A string with no escapes and no control characters, at the cursor.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let b = self.b;
        let start = self.i;
        let len = b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if b[start + len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        std::str::from_utf8(&b[start..start + len]).ok()
    }

    /// `[d, ...]`: non-negative integers of at most 18 digits, without leading zeros.
    fn dimensions(&mut self) -> Option<Vec<i64>> {
        self.eat(b'[')?;
        let mut dims = Vec::with_capacity(2);
        if self.peek()? == b']' {
            self.i += 1;
            return Some(dims);
        }
        loop {
            self.skip_whitespace();
            let (d, end) = digits(self.b, self.i, 0);
            let len = end - self.i;
            if len == 0 || len > 18 || (len > 1 && self.b[self.i] == b'0') {
                return None;
            }
            dims.push(d as i64);
            self.i = end;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(dims);
                }
                _ => return None,
            }
        }
    }

    /// A number, or an array of numbers nested at most `depth` deep, appended to `values` in
    /// order. Numbers inside an array are read in its loop, with the position in a local (as in
    /// `row`); only nested arrays recurse.
    fn nested_numbers(&mut self, depth: usize) -> Option<()> {
        if self.peek()? != b'[' {
            self.i = push_number(self.b, self.i, &mut self.values)?;
            return Some(());
        }
        if depth == 0 {
            return None;
        }
        self.i += 1;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        let b = self.b;
        loop {
            let i = skip_whitespace(b, self.i);
            if b.get(i) == Some(&b'[') {
                self.i = i;
                self.nested_numbers(depth - 1)?;
            } else {
                self.i = push_number(b, i, &mut self.values)?;
            }
            let i = skip_whitespace(b, self.i);
            match b.get(i) {
                Some(b',') => self.i = i + 1,
                Some(b']') => {
                    self.i = i + 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Reads the number at `at` onto `values` if it converts exactly to a finite f32; the index
/// after it.
fn push_number(b: &[u8], at: usize, values: &mut Vec<f32>) -> Option<usize> {
    let (x, end) = number(b, at)?;
    let x = x as f32;
    if !x.is_finite() {
        return None;
    }
    values.push(x);
    Some(end)
}

/// The index of the first byte from `i` on that is not JSON whitespace.
fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// Digits from `at` on: their value (wrapping past 19 digits) and the index after them.
fn digits(b: &[u8], at: usize, mut value: u64) -> (u64, usize) {
    let mut n = 0;
    for &c in &b[at..] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(d));
        n += 1;
    }
    (value, at + n)
}

/// The JSON number at `start` and the index after it, if its digits fit in 2^53 and its decimal
/// exponent is within ±22: then `digits × 10^e` (or `÷ 10^-e`) is one correctly rounded
/// operation on exact operands, the value serde_json computes too. Anything else is `None`.
fn number(b: &[u8], start: usize) -> Option<(f64, usize)> {
    let negative = b.get(start) == Some(&b'-');
    let int_start = start + usize::from(negative);
    let (mut digits, mut i) = digits(b, int_start, 0);
    let int_len = i - int_start;
    // JSON: at least one digit, and no leading zero before another digit.
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return None;
    }
    let mut count = int_len;
    let mut exponent: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        (digits, i) = self::digits(b, frac_start, digits);
        let frac_len = i - frac_start;
        if frac_len == 0 {
            return None;
        }
        count += frac_len;
        exponent = -(frac_len as i64);
    }
    if count > 19 || digits > 1 << 53 {
        return None;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let sign = match b.get(i) {
            Some(b'-') => -1,
            Some(b'+') => 1,
            _ => 0,
        };
        let exp_start = i + usize::from(sign != 0);
        let (e, end) = self::digits(b, exp_start, 0);
        if end == exp_start || end - exp_start > 4 {
            return None;
        }
        i = end;
        exponent += if sign < 0 { -(e as i64) } else { e as i64 };
    }
    // Exact: `digits` is at most 2^53 (and the signed conversion is one instruction).
    let magnitude = digits as i64 as f64;
    let value = match exponent {
        0 => magnitude,
        1..=22 => magnitude * POW10[exponent as usize],
        -22..=-1 => magnitude / POW10[(-exponent) as usize],
        _ => return None,
    };
    Some((if negative { -value } else { value }, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::features::{FeatureSchema, MissingPolicy, Preprocessing};
    use crate::routes::predict::body::fast_path_agrees;

    const MAX_ROWS: usize = 3;

    /// Whether the fast path answered `body`; wherever it does, serde_json and `into_matrix`
    /// must give the same matrix, bit for bit.
    fn agrees(body: &str, width: usize) -> bool {
        let schema = FeatureSchema::new(
            (0..width).map(|i| format!("f{i}")).collect(),
            vec![0.0; width],
        );
        let how = Preprocessing {
            schema: &schema,
            max_rows: MAX_ROWS,
            missing: MissingPolicy::Reject,
        };
        fast_path_agrees(body.as_bytes(), how).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    #[test]
    fn plain_rows_are_read_exactly_as_the_slow_path_reads_them() {
        for (body, width) in [
            (
                r#"{"features": [17.99, 10.38, 122.8, 0.1184, 1001, 0, -0, -0.0, 2e3, 1.5E-7, -3.25e+2]}"#,
                11,
            ),
            (
                r#"{"instances": [[1, 2.5], [3e-5, 0.000123], [123456789012345, 7]]}"#,
                2,
            ),
            ("{\n  \"instances\" : [ [ 1 , 2 ] ,\t[3,4] ]\n}\n", 2),
            (
                r#"{"features": [9007199254740992, 0.1, 0.2, 0.3, 1e22, 1e-22, 4.35, 2.675]}"#,
                8,
            ),
        ] {
            assert!(agrees(body, width), "the fast path declined {body}");
        }
    }

    #[test]
    fn many_decimal_values_agree_bit_for_bit() {
        let mut seed: u64 = 42;
        let mut answered = 0;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let digits = (seed >> 11) % 100_000_000;
            let scale = ((seed >> 3) % 12) as i32;
            let sign = if seed & 1 == 0 { "" } else { "-" };
            for v in [
                format!("{sign}{}", digits as f64 / 10f64.powi(scale)),
                format!("{sign}{digits}e-{scale}"),
                format!("{sign}{digits}E+{}", scale % 8),
            ] {
                if agrees(&format!(r#"{{"features": [{v}]}}"#), 1) {
                    answered += 1;
                }
            }
        }
        // Shortest float forms sometimes need 17 digits; those go to serde_json.
        assert!(
            answered > 55_000,
            "the fast path answered only {answered} of 60000"
        );
    }

    #[test]
    fn everything_else_is_left_to_the_slow_path() {
        for body in [
            r#"{"features": {"mean radius": 17.99}}"#,
            r#"{"features": [null]}"#,
            r#"{"features": ["1"]}"#,
            r#"{"features": [true]}"#,
            r#"{"features": [[1]]}"#,
            r#"{"features": [1], "instances": [[1]]}"#,
            r#"{"instances": [[1]], "features": [1]}"#,
            r#"{"instances": [{"a": 1}]}"#,
            r#"{"other": [1]}"#,
            r#"{"features": [01]}"#,
            r#"{"features": [1.]}"#,
            r#"{"features": [.5]}"#,
            r#"{"features": [1e]}"#,
            r#"{"features": [+1]}"#,
            r#"{"features": [-]}"#,
            r#"{"features": [1,]}"#,
            r#"{"features": [1 2]}"#,
            r#"{"features": [1]"#,
            r#"{"features": [1]} x"#,
            r#"{"features": [1e400]}"#,
            r#"{"features": [1e23]}"#,
            r#"{"features": [12345678901234567890]}"#,
            r#"{"features": [0.12345678901234567]}"#,
            r#"{"fea\u0074ures": [1]}"#,
            "",
            "[1, 2]",
            // Valid JSON, but not a valid request as it stands: the slow path explains why.
            r#"{"features": []}"#,
            r#"{"features": [1, 2]}"#,
            r#"{"instances": []}"#,
            r#"{"instances": [[]]}"#,
            r#"{"instances": [[1], [1, 2]]}"#,
            r#"{"instances": [[1], [2], [3], [4]]}"#,
            r#"{"features": [1e39]}"#,
            r#"{"features": [-3.5e38]}"#,
        ] {
            assert!(
                parse(body.as_bytes(), 1, MAX_ROWS).is_none(),
                "the fast path took {body}"
            );
        }
        assert!(agrees(r#"{"instances": [[1], [2], [3]]}"#, 1));
    }

    #[test]
    fn every_cut_short_body_is_declined_without_a_panic() {
        let body = r#"{"instances": [[-1.5e-3, 0.25E+2], [12, -0]]}"#;
        assert!(parse(body.as_bytes(), 2, MAX_ROWS).is_some());
        for end in 0..body.len() {
            assert!(
                parse(&body.as_bytes()[..end], 2, MAX_ROWS).is_none(),
                "{}",
                &body[..end]
            );
        }
    }
}

//! A fast path for the commonest `/predict` bodies: rows as arrays of plain numbers,
//! `{"features": [17.99, ...]}` and `{"instances": [[17.99, ...], ...]}`.
//!
//! serde_json spends about 330 instructions per number through its visitors, a third of a
//! 100-row request; this scanner needs a fraction of that. It accepts only what it can read
//! exactly as serde_json would, and answers `None` for everything else (other keys, named
//! rows, nulls, strings, any malformed input, numbers it cannot convert exactly), which then
//! goes through serde_json: the one place that parses every other body and explains every
//! error.

use super::features::{FeatureValue, PredictRequest, RowInput};

/// The request, if `body` is one of the two plain forms and every number converts exactly.
pub fn parse(body: &[u8]) -> Option<PredictRequest> {
    let mut c = Cursor { b: body, i: 0 };
    c.eat(b'{')?;
    c.eat(b'"')?;
    let rest = &c.b[c.i..];
    let request = if rest.starts_with(b"features\"") {
        c.i += b"features\"".len();
        c.eat(b':')?;
        PredictRequest::new(Some(c.row()?), None)
    } else if rest.starts_with(b"instances\"") {
        c.i += b"instances\"".len();
        c.eat(b':')?;
        c.eat(b'[')?;
        let mut rows = Vec::new();
        if c.peek()? == b']' {
            c.i += 1;
        } else {
            loop {
                rows.push(c.row()?);
                match c.peek()? {
                    b',' => c.i += 1,
                    b']' => {
                        c.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        PredictRequest::new(None, Some(rows))
    } else {
        return None;
    };
    c.eat(b'}')?;
    c.skip_whitespace();
    (c.i == c.b.len()).then_some(request)
}

/// 10^0 ..= 10^22: every power of ten an f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.i += 1)
    }

    /// Digits from `at` on: their value (wrapping past 19 digits) and the index after them.
    fn digits(&self, mut at: usize, mut value: u64) -> (u64, usize) {
        while let Some(&c) = self.b.get(at) {
            if !c.is_ascii_digit() {
                break;
            }
            value = value.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            at += 1;
        }
        (value, at)
    }

    fn row(&mut self) -> Option<RowInput> {
        self.eat(b'[')?;
        let mut values = Vec::with_capacity(32);
        if self.peek()? == b']' {
            self.i += 1;
            return Some(RowInput::Ordered(values));
        }
        loop {
            self.skip_whitespace();
            values.push(FeatureValue::Number(self.number()?));
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(RowInput::Ordered(values));
                }
                _ => return None,
            }
        }
    }

    /// A JSON number whose digits fit in 2^53 and whose decimal exponent is within ±22: then
    /// `digits × 10^e` (or `÷ 10^-e`) is one correctly rounded operation on exact operands, the
    /// value serde_json computes too. Anything else is `None`.
    fn number(&mut self) -> Option<f64> {
        let negative = self.b.get(self.i) == Some(&b'-');
        let int_start = self.i + usize::from(negative);
        let (mut digits, mut i) = self.digits(int_start, 0);
        let int_len = i - int_start;
        // JSON: at least one digit, and no leading zero before another digit.
        if int_len == 0 || (int_len > 1 && self.b[int_start] == b'0') {
            return None;
        }
        let mut count = int_len;
        let mut exponent: i64 = 0;
        if self.b.get(i) == Some(&b'.') {
            let frac_start = i + 1;
            (digits, i) = self.digits(frac_start, digits);
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
        if let Some(b'e' | b'E') = self.b.get(i) {
            i += 1;
            let sign = match self.b.get(i) {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            let exp_start = i + usize::from(sign != 0);
            let (e, end) = self.digits(exp_start, 0);
            if end == exp_start || end - exp_start > 4 {
                return None;
            }
            i = end;
            exponent += if sign < 0 { -(e as i64) } else { e as i64 };
        }
        let magnitude = digits as f64;
        let value = match exponent {
            0 => magnitude,
            1..=22 => magnitude * POW10[exponent as usize],
            -22..=-1 => magnitude / POW10[(-exponent) as usize],
            _ => return None,
        };
        self.i = i;
        Some(if negative { -value } else { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path must agree with serde_json exactly wherever it answers.
    fn agrees(body: &str) -> bool {
        let fast = parse(body.as_bytes());
        let slow: Result<PredictRequest, _> = serde_json::from_str(body);
        match (fast, slow) {
            (Some(f), Ok(s)) => {
                assert_eq!(format!("{f:?}"), format!("{s:?}"), "{body}");
                true
            }
            (Some(f), Err(e)) => panic!("fast path accepted {body} as {f:?}, serde_json says {e}"),
            (None, _) => false,
        }
    }

    #[test]
    fn plain_rows_are_read_exactly_as_serde_json_reads_them() {
        for body in [
            r#"{"features": [17.99, 10.38, 122.8, 0.1184, 1001, 0, -0, -0.0, 2e3, 1.5E-7, -3.25e+2]}"#,
            r#"{"instances": [[1, 2.5], [3e-5, 0.000123], [123456789012345]]}"#,
            "{\n  \"instances\" : [ [ 1 , 2 ] ,\t[3] ]\n}\n",
            r#"{"instances": []}"#,
            r#"{"features": []}"#,
            r#"{"instances": [[]]}"#,
            r#"{"features": [9007199254740992, 0.1, 0.2, 0.3, 1e22, 1e-22, 4.35, 2.675]}"#,
        ] {
            assert!(agrees(body), "the fast path declined {body}");
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
                if agrees(&format!(r#"{{"features": [{v}]}}"#)) {
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
    fn everything_else_is_left_to_serde_json() {
        for body in [
            r#"{"features": {"mean radius": 17.99}}"#,
            r#"{"features": [null, 1]}"#,
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
        ] {
            assert!(
                parse(body.as_bytes()).is_none(),
                "the fast path took {body}"
            );
        }
    }
}

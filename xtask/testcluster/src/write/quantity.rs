//! Resource quantities in kube-apiserver's canonical form (`1000m` is stored as
//! `1`, `1024Mi` as `1Gi`, `0.5` as `500m`, a YAML number as a string), so that an
//! apply of `cpu: 1000m` reads back as the real server would answer it.
use serde_json::Value;

const BINARY: &[(&str, u32)] = &[
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];
const DECIMAL: &[(&str, i32)] = &[
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// `(numerator, denominator)` of a plain decimal number such as `1.25`.
fn parse_number(s: &str) -> Option<(i128, i128)> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        || frac.len() > 18
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    Some((digits.parse().ok()?, 10i128.pow(frac.len() as u32)))
}

/// The canonical form of `q`, or None when it is not a quantity this knows how to read
/// (it is then stored as given).
pub fn canonical(q: &str) -> Option<String> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (num, den) = parse_number(number)?;
    if let Some((_, power)) = BINARY.iter().find(|(s, _)| *s == suffix) {
        let bytes = num * 1024i128.pow(*power);
        if bytes % den == 0 {
            let bytes = bytes / den;
            let (suffix, value) = (0..=6u32)
                .rev()
                .find(|k| bytes % 1024i128.pow(*k) == 0)
                .map(|k| {
                    (
                        if k == 0 { "" } else { BINARY[k as usize - 1].0 },
                        bytes / 1024i128.pow(k),
                    )
                })
                .unwrap_or(("", bytes));
            return Some(format!("{value}{suffix}"));
        }
        return None;
    }
    let exp = DECIMAL.iter().find(|(s, _)| *s == suffix)?.1;
    // In nano units, rounded up as the real server rounds sub-nano precision.
    let scaled = num * 10i128.pow((exp + 9) as u32);
    let nanos = (scaled + den - 1) / den;
    if nanos == 0 {
        return Some("0".into());
    }
    let (suffix, value) = DECIMAL
        .iter()
        .rev()
        .find(|(_, e)| nanos % 10i128.pow((*e + 9) as u32) == 0)
        .map(|(s, e)| (*s, nanos / 10i128.pow((*e + 9) as u32)))?;
    Some(format!("{value}{suffix}"))
}

/// Rewrites the values of every `requests`, `limits`, `capacity` and `sizeLimit`
/// in an object (they hold quantities in every kind served here).
pub fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match (k.as_str(), &mut *child) {
                    ("requests" | "limits" | "capacity" | "hard", Value::Object(q)) => {
                        q.values_mut().for_each(normalize_one)
                    }
                    ("sizeLimit", c) => normalize_one(c),
                    (_, c) => normalize(c),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn normalize_one(v: &mut Value) {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return,
    };
    *v = Value::String(canonical(&text).unwrap_or(text));
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn quantities_read_back_as_kube_apiserver_writes_them() {
        let cases = [
            ("1000m", "1"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("2", "2"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("128Mi", "128Mi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0", "0"),
            ("100M", "100M"),
            ("1000000", "1M"),
            ("0.1", "100m"),
            ("50m", "50m"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(canonical("lots"), None);
    }
}

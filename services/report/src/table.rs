//! Turning eventservice's summary (`{"<url>": count}`) into the report.

use std::collections::HashMap;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    pub url: String,
    pub count: u64,
}

/// Parses a summary reply. Most visited first; ties by URL so the output is stable.
pub fn rows(reply: &str) -> anyhow::Result<Vec<Row>> {
    let counts: HashMap<String, u64> = serde_json::from_str(reply).map_err(|e| {
        anyhow::anyhow!("eventservice sent an unreadable summary ({e}): {reply:.200}")
    })?;
    let mut rows: Vec<Row> = counts
        .into_iter()
        .map(|(url, count)| Row { url, count })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.url.cmp(&b.url)));
    Ok(rows)
}

/// Aligned columns with a header: `url` left, `count` right-aligned.
pub fn render(rows: &[Row]) -> String {
    let url_width = rows
        .iter()
        .map(|r| r.url.chars().count())
        .max()
        .unwrap_or(0)
        .max("url".len());
    let count_width = rows
        .iter()
        .map(|r| r.count.to_string().len())
        .max()
        .unwrap_or(0)
        .max("count".len());
    let mut out = format!("{:<url_width$}  {:>count_width$}\n", "url", "count");
    for r in rows {
        out.push_str(&format!(
            "{:<url_width$}  {:>count_width$}\n",
            r.url, r.count
        ));
    }
    out
}

/// The `--json` form: an array of `{"url", "count"}`, most visited first.
pub fn render_json(rows: &[Row]) -> String {
    serde_json::to_string_pretty(rows).expect("rows serialise") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_visited_first_then_by_url() {
        let r = rows(r#"{"/audit": 2, "/add": 7, "/": 2}"#).unwrap();
        let order: Vec<&str> = r.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(order, ["/add", "/", "/audit"]);
    }

    #[test]
    fn table_is_aligned_with_a_header() {
        let r = rows(r#"{"/add/calculate": 12, "/add": 3}"#).unwrap();
        assert_eq!(
            render(&r),
            "url             count\n/add/calculate     12\n/add                3\n"
        );
        assert_eq!(render(&[]), "url  count\n");
    }

    #[test]
    fn json_output_is_an_ordered_array() {
        let r = rows(r#"{"/a": 1, "/b": 2}"#).unwrap();
        let v: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"url": "/b", "count": 2}, {"url": "/a", "count": 1}])
        );
    }

    #[test]
    fn garbage_reply_is_an_error() {
        assert!(
            rows("not json")
                .unwrap_err()
                .to_string()
                .contains("unreadable summary")
        );
    }
}

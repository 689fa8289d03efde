//! Server-side HTML. Every dynamic value goes through [`escape`]: what a user
//! typed is shown as text, never interpreted as markup. No JavaScript needed.

use std::fmt::Write as _;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already escaped HTML). `title` is plain text.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · micro</title>\n\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
         .error{{color:#a00}}table{{border-collapse:collapse}}td,th{{padding:.2em .8em;text-align:left}}</style>\n\
         </head>\n<body>\n<nav><a href=\"/add\">Add</a> · <a href=\"/audit\">Audit</a></nav>\n\
         <h1>{title}</h1>\n{body}</body>\n</html>\n",
        title = escape(title),
    )
}

/// The form, pre-filled with what was typed last (escaped).
fn form(first: &str, second: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/add/calculate\">\n\
         <label>First <input name=\"first\" id=\"first\" value=\"{}\" inputmode=\"numeric\"></label>\n\
         <label>Second <input name=\"second\" id=\"second\" value=\"{}\" inputmode=\"numeric\"></label>\n\
         <button type=\"submit\" id=\"calculate\">Calculate</button>\n</form>\n",
        escape(first),
        escape(second)
    )
}

pub fn add_form() -> String {
    page("Add", &form("", ""))
}

/// The result of a calculation; `warning` when it could not be recorded.
pub fn add_result(first: i64, second: i64, result: i64, warning: Option<&str>) -> String {
    let mut body = format!("<p id=\"result\">{first} + {second} = {result}</p>\n");
    if let Some(w) = warning {
        let _ = writeln!(body, "<p class=\"error\" id=\"error\">{}</p>", escape(w));
    }
    body.push_str(&form(&first.to_string(), &second.to_string()));
    page("Add", &body)
}

/// The form again with an error message above it.
pub fn add_error(message: &str, first: &str, second: &str) -> String {
    let body = format!(
        "<p class=\"error\" id=\"error\">{}</p>\n{}",
        escape(message),
        form(first, second)
    );
    page("Add", &body)
}

/// One audit entry as auditservice lists it.
pub struct AuditRow<'a> {
    pub ts: &'a str,
    pub calc: &'a str,
    pub result: &'a str,
}

pub fn audit(rows: &[AuditRow<'_>]) -> String {
    if rows.is_empty() {
        return page("Audit", "<p id=\"empty\">No calculations yet.</p>\n");
    }
    let mut body = String::from(
        "<table id=\"audit\">\n<thead><tr><th>When</th><th>Calculation</th><th>Result</th></tr></thead>\n<tbody>\n",
    );
    for row in rows {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"calc\">{}</td><td class=\"result\">{}</td></tr>",
            escape(row.ts),
            escape(row.calc),
            escape(row.result)
        );
    }
    body.push_str("</tbody>\n</table>\n");
    page("Audit", &body)
}

pub fn audit_error(message: &str) -> String {
    page(
        "Audit",
        &format!("<p class=\"error\" id=\"error\">{}</p>\n", escape(message)),
    )
}

pub fn not_found(path: &str) -> String {
    page(
        "Not found",
        &format!("<p class=\"error\">No page at {}.</p>\n", escape(path)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_input_is_text() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        let page = add_error("not an integer: <b>", "<script>", "\"><img>");
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<b>"));
        assert!(page.contains("value=\"&lt;script&gt;\""));
        assert!(page.contains("value=\"&quot;&gt;&lt;img&gt;\""));
    }

    #[test]
    fn result_page_shows_the_sum() {
        let page = add_result(2, 3, 5, None);
        assert!(page.contains("2 + 3 = 5"));
        assert!(!page.contains("class=\"error\""));
        assert!(add_result(2, 3, 5, Some("not recorded")).contains("not recorded"));
    }

    #[test]
    fn audit_rows_are_escaped() {
        let page = audit(&[AuditRow {
            ts: "now",
            calc: "<i>1+1",
            result: "2",
        }]);
        assert!(page.contains("&lt;i&gt;1+1"));
        assert!(audit(&[]).contains("No calculations yet"));
    }
}

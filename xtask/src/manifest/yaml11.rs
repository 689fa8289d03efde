//! serde_yaml writes YAML 1.2, where `yes`, `on` or `n` are plain strings and
//! need no quotes. kubectl and the API server read YAML 1.1 (go-yaml v2),
//! where they are booleans: `args: [--appendonly, yes]` would be rejected
//! (`cannot unmarshal bool into ... of type string`). So every plain scalar
//! that YAML 1.1 reads as a boolean is single-quoted.

/// The plain scalars YAML 1.1 resolves to a boolean and YAML 1.2 does not
/// (`true`/`false` are booleans in both: serde_yaml quotes them when they are
/// strings, and a real boolean must stay plain).
const YAML11_BOOLEANS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// Quotes plain scalars of serde_yaml's block-style output that YAML 1.1
/// would read as booleans; block scalar contents (`|-`) are left alone.
pub fn quote_booleans(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 16);
    // Indentation of the line that opened a block scalar: lines indented
    // deeper are its content.
    let mut block_indent: Option<usize> = None;
    for line in yaml.split_inclusive('\n') {
        let text = line.trim_end_matches('\n');
        let indent = text.len() - text.trim_start().len();
        if let Some(opened) = block_indent {
            if text.trim().is_empty() || indent > opened {
                out.push_str(line);
                continue;
            }
            block_indent = None;
        }
        let trimmed = text.trim_end();
        if trimmed.ends_with('|') || trimmed.ends_with("|-") || trimmed.ends_with("|+") {
            block_indent = Some(indent);
        }
        out.push_str(&quote_line(text));
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// `- yes` -> `- 'yes'`, `key: on` -> `key: 'on'`; other lines unchanged.
fn quote_line(text: &str) -> String {
    let body = text.trim_start();
    let indent = &text[..text.len() - body.len()];
    // Strip list markers (`- - x`) and one `key: ` prefix to find the value.
    let mut prefix_len = 0;
    let mut rest = body;
    while let Some(after) = rest.strip_prefix("- ") {
        prefix_len += 2;
        rest = after;
    }
    if let Some(colon) = rest.find(": ")
        && !rest.starts_with(['\'', '"'])
    {
        prefix_len += colon + 2;
        rest = &rest[colon + 2..];
    }
    if YAML11_BOOLEANS.contains(&rest) {
        format!("{indent}{}'{rest}'", &body[..prefix_len])
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::quote_booleans;

    #[test]
    fn quotes_yaml11_booleans_only_where_they_are_plain_values() {
        let input = "args:\n- --appendonly\n- yes\nflag: on\nname: yesterday\ntext: |-\n  yes\n  no\nafter: n\n";
        let expected = "args:\n- --appendonly\n- 'yes'\nflag: 'on'\nname: yesterday\ntext: |-\n  yes\n  no\nafter: 'n'\n";
        assert_eq!(quote_booleans(input), expected);
    }

    #[test]
    fn leaves_real_booleans_and_quoted_values_alone() {
        // A real boolean stays one; an already quoted value is not quoted twice.
        let input = "readOnlyRootFilesystem: true\nvalue: 'yes'\nother: \"no\"\n";
        assert_eq!(quote_booleans(input), input);
    }
}

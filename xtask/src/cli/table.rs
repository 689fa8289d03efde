//! The one table printer: aligned columns for every command's text output.

/// How a column lines up: text to the left, numbers to the right.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// An aligned table, two spaces between columns; the first row is the header.
/// Every column is left-aligned.
pub fn table(rows: &[Vec<String>]) -> String {
    aligned(rows, &[])
}

/// An aligned table where `align[i]` says how column `i` lines up (left when
/// not given). Trailing spaces are trimmed, so a last left column is ragged.
pub fn aligned(rows: &[Vec<String>], align: &[Align]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(
                |(i, c)| match align.get(i).copied().unwrap_or(Align::Left) {
                    Align::Left => format!("{c:<w$}", w = widths[i]),
                    Align::Right => format!("{c:>w$}", w = widths[i]),
                },
            )
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn columns_line_up_and_numbers_go_right() {
        let rows = [
            row(&["NAME", "SIZE"]),
            row(&["a", "1.0"]),
            row(&["longer", "10.5"]),
        ];
        assert_eq!(
            aligned(&rows, &[Align::Left, Align::Right]),
            "NAME    SIZE\na        1.0\nlonger  10.5\n"
        );
    }

    #[test]
    fn a_last_left_column_has_no_trailing_spaces() {
        let rows = [row(&["A", "B"]), row(&["x", "long"]), row(&["y", ""])];
        assert_eq!(table(&rows), "A  B\nx  long\ny\n");
    }
}

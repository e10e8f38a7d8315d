//! Aligned text tables: the first column left-aligned, the others right-aligned.

/// Renders rows (the first is the header) with columns padded to their widest cell.
pub(crate) fn render(rows: &[Vec<String>], header_style: impl Fn(&str) -> String) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if i == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        let line = line.trim_end().to_string();
        out.push_str(&if r == 0 { header_style(&line) } else { line });
        out.push('\n');
    }
    out
}

/// A latency in ns shown in `unit` with that unit's decimals.
pub(crate) fn latency(ns: i64, unit: crate::cli::Unit) -> String {
    format!("{:.*}", unit.decimals(), ns as f64 / unit.nanos())
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns() {
        let rows = vec![
            vec!["kind".to_string(), "p99".to_string()],
            vec!["market".to_string(), "1.5".to_string()],
        ];
        assert_eq!(
            super::render(&rows, str::to_string),
            "kind    p99\nmarket  1.5\n"
        );
    }
}

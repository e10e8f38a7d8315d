//! Aligned text tables: the first column left-aligned, the others right-aligned.

/// Renders rows (the first is the header) with columns padded to their widest cell.
///
/// One line buffer for every row and the padding written in place: a table of ten thousand
/// windows and groups (`pct --window`) is the serial end of its command.
pub(crate) fn render(rows: &[Vec<String>], header_style: impl Fn(&str) -> String) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line_len = widths.iter().sum::<usize>() + 2 * columns + 1;
    let mut out = String::with_capacity(rows.len() * line_len);
    let mut line = String::with_capacity(line_len);
    for (r, row) in rows.iter().enumerate() {
        line.clear();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = std::iter::repeat_n(' ', widths[i] - cell.chars().count());
            if i == 0 {
                line.push_str(cell);
                line.extend(pad);
            } else {
                line.extend(pad);
                line.push_str(cell);
            }
        }
        let line = line.trim_end();
        if r == 0 {
            out.push_str(&header_style(line));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `cells` of every row, in order: in parts on every core when there are many rows (the
/// formatting of numbers is most of a large table's time, after the pass and on one core).
pub(crate) fn cells_of_rows<R: Sync>(
    rows: &[R],
    cells: impl Fn(&R) -> Vec<String> + Sync,
) -> Vec<Vec<String>> {
    /// Fewer rows take a few milliseconds at most: not worth a thread.
    const ROWS_FOR_PARTS: usize = 4096;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || rows.len() < ROWS_FOR_PARTS {
        return rows.iter().map(&cells).collect();
    }
    let cells = &cells;
    std::thread::scope(|scope| {
        let parts: Vec<_> = rows
            .chunks(rows.len().div_ceil(threads))
            .map(|part| scope.spawn(move || part.iter().map(cells).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// A latency in ns shown in `unit` with that unit's decimals.
pub(crate) fn latency(ns: i64, unit: crate::cli::Unit) -> String {
    format!("{:.*}", unit.decimals(), ns as f64 / unit.nanos())
}

#[cfg(test)]
mod tests {
    /// Enough rows to be formatted in parts (on a machine of 2 cores or more): the rows come
    /// back whole and in order.
    #[test]
    fn cells_of_many_rows_keep_their_order() {
        let rows: Vec<u32> = (0..10_000).collect();
        let cells = super::cells_of_rows(&rows, |row| vec![row.to_string(), format!("{row}x")]);
        let expected: Vec<Vec<String>> = rows
            .iter()
            .map(|row| vec![row.to_string(), format!("{row}x")])
            .collect();
        assert_eq!(cells, expected);
    }

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

//! Tables as novaclient prints them (prettytable: `+----+` borders, a header row).

/// Renders `rows` under `headers`.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (w, cell) in widths.iter().zip(cells) {
            let pad = w.saturating_sub(cell.chars().count());
            out.push_str(&format!("| {cell}{} ", " ".repeat(pad)));
        }
        out + "|\n"
    };
    let mut out = rule.clone();
    out.push_str(&line(&mut headers.iter().copied()));
    out.push_str(&rule);
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out.push_str(&rule);
    out
}

/// A `Property | Value` table (`nova show`).
pub(crate) fn properties(pairs: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(k, v)| vec![(*k).to_owned(), v.clone()])
        .collect();
    table(&["Property", "Value"], &rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn prettytable_shape() {
        let t = super::table(&["ID", "Name"], &[vec!["1".into(), "m1.tiny".into()]]);
        assert_eq!(
            t,
            "+----+---------+\n| ID | Name    |\n+----+---------+\n| 1  | m1.tiny |\n+----+---------+\n"
        );
    }
}

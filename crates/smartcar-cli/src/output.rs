//! What the tool prints: aligned tables for people, one JSON object per line with `--json`.
//! Results go to stdout; notes, progress and errors to stderr.

use std::io::Write as _;

use serde_json::Value;

/// Where results go.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub json: bool,
}

/// The widest a table cell is shown, but in the last column.
const CELL_MAX: usize = 48;

/// A table: column headers and the object key each column shows.
pub struct Table {
    columns: Vec<(String, String)>,
    rows: Vec<Value>,
}

impl Table {
    pub fn new(columns: &[(&str, &str)]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|(h, k)| ((*h).to_owned(), (*k).to_owned()))
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Value) {
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn rows(&self) -> &[Value] {
        &self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A JSON value as a table cell.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

impl Out {
    /// Prints a table (`--json`: one object per row).
    pub fn table(&self, table: &Table) {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            for row in &table.rows {
                let _ = writeln!(stdout, "{row}");
            }
            return;
        }
        // Every column but the last is cut at CELL_MAX characters (`--json` has it all).
        let last = table.columns.len().saturating_sub(1);
        let cells: Vec<Vec<String>> = table
            .rows
            .iter()
            .map(|row| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, key))| {
                        let text = cell(row.get(key.as_str()));
                        if i < last && text.chars().count() > CELL_MAX {
                            text.chars().take(CELL_MAX - 1).collect::<String>() + "…"
                        } else {
                            text
                        }
                    })
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = table.columns.iter().map(|(h, _)| h.len()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut std::io::StdoutLock<'_>, row: &[String]| {
            let mut text = String::new();
            for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    text.push_str(c);
                } else {
                    text.push_str(c);
                    text.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        let headers: Vec<String> = table.columns.iter().map(|(h, _)| h.clone()).collect();
        line(&mut stdout, &headers);
        for row in &cells {
            line(&mut stdout, row);
        }
    }

    /// Prints one result: `--json` one line; otherwise `key  value` lines.
    pub fn record(&self, value: &Value) {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let _ = writeln!(stdout, "{value}");
            return;
        }
        match value.as_object() {
            Some(map) => {
                let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
                for (k, v) in map {
                    let _ = writeln!(stdout, "{k:<width$}  {}", cell(Some(v)));
                }
            }
            None => {
                let _ = writeln!(stdout, "{}", cell(Some(value)));
            }
        }
    }

    /// A note for people (stderr; silent with `--json`).
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", text.as_ref());
        }
    }
}

/// A progress bar on stderr over `len` items (hidden when stderr is not a terminal or with
/// `--json`).
pub fn progress(out: Out, len: u64, what: &str) -> indicatif::ProgressBar {
    if out.json || len < 2 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg} {bar:30} {pos}/{len} ({eta})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// `-v`: the SDK's and the tool's tracing on stderr. The SDK never puts a secret in a span or
/// event (tests/tests/secrets_audit.rs), and neither does this tool.
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(true)
        .try_init();
}

//! Report writers: the same [`Table`]s as an Excel workbook, CSV, a Markdown table or JSON.
//!
//! These only produce bytes; saving them goes through [`Workspace::write`](crate::Workspace::write).
//! Report data often comes from mail and web pages, so every writer treats cell text as
//! untrusted: no formulas in xlsx, no formula triggers in CSV, no raw HTML in Markdown,
//! and links only for `http(s):`/`mailto:` URLs.

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime};
use rust_xlsxwriter::{Format, Url, Workbook, XlsxError};
use serde::Serialize;

use crate::WorkspaceError;

/// Excel's sheet name limit, in UTF-16 units.
const SHEET_NAME_MAX: usize = 31;
/// Excel's cell text limit, in UTF-16 units.
const CELL_TEXT_MAX: usize = 32_767;
/// Excel's row limit, header included.
const MAX_ROWS: usize = 1_048_576;
/// Excel's column limit.
const MAX_COLUMNS: usize = 16_384;
/// Widest autofitted column, in pixels, so one long cell does not push the rest off-screen.
const MAX_COLUMN_PIXELS: u32 = 400;

/// One sheet of a report.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Table {
    /// Sheet or table name.
    pub name: String,
    /// Header labels.
    pub columns: Vec<String>,
    /// Rows of cells; rows may be shorter or longer than `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with the given name and column labels.
    pub fn new(
        name: impl Into<String>,
        columns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Number of columns needed to show every header and cell.
    fn width(&self) -> usize {
        self.rows
            .iter()
            .map(Vec::len)
            .chain([self.columns.len()])
            .max()
            .unwrap_or(0)
    }

    /// The header padded to `width` with empty labels.
    fn header(&self, width: usize) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .map(String::as_str)
            .chain(std::iter::repeat(""))
            .take(width)
    }
}

/// One cell; serialises to the plain JSON value (`null` for [`Cell::Empty`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(untagged)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number (NaN and infinities are written as text where the format has no such value).
    Number(f64),
    /// True or false.
    Bool(bool),
    /// A calendar date.
    Date(NaiveDate),
    /// A date and time without a zone (convert to the person's local time first).
    DateTime(NaiveDateTime),
    /// A hyperlink.
    Link {
        /// What to show.
        text: String,
        /// Where it points.
        url: String,
    },
    /// No value.
    #[default]
    Empty,
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<f64> for Cell {
    fn from(number: f64) -> Self {
        Self::Number(number)
    }
}

impl From<i64> for Cell {
    // Reports hold counts and money far below 2^53, where f64 is exact.
    fn from(number: i64) -> Self {
        Self::Number(number as f64)
    }
}

impl From<bool> for Cell {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<NaiveDate> for Cell {
    fn from(date: NaiveDate) -> Self {
        Self::Date(date)
    }
}

impl From<NaiveDateTime> for Cell {
    fn from(datetime: NaiveDateTime) -> Self {
        Self::DateTime(datetime)
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Empty, Into::into)
    }
}

impl Cell {
    /// Plain text for text formats; a link becomes its URL.
    fn plain(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => Cow::Borrowed(text),
            Self::Number(n) => Cow::Owned(n.to_string()),
            Self::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Self::Date(d) => Cow::Owned(d.format("%Y-%m-%d").to_string()),
            Self::DateTime(dt) => Cow::Owned(dt.format("%Y-%m-%d %H:%M:%S").to_string()),
            Self::Link { url, .. } => Cow::Borrowed(url),
            Self::Empty => Cow::Borrowed(""),
        }
    }
}

/// Whether a URL may become a clickable link in a report.
fn is_linkable(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// One worksheet per table, with a bold frozen header row, an autofilter, real dates and
/// fitted column widths. Sheet names are made valid and unique.
pub fn to_xlsx(tables: &[Table]) -> Result<Vec<u8>, WorkspaceError> {
    let xlsx_error = |e: XlsxError| WorkspaceError::Report {
        format: "xlsx",
        message: e.to_string(),
    };
    let header = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm");

    let mut workbook = Workbook::new();
    let mut taken = Vec::new();
    for table in tables {
        let width = table.width();
        if table.rows.len() >= MAX_ROWS || width > MAX_COLUMNS {
            return Err(WorkspaceError::Report {
                format: "xlsx",
                message: format!(
                    "table {:?} has {} rows and {width} columns but a sheet holds at most {} rows \
                     and {MAX_COLUMNS} columns; split it into several tables",
                    table.name,
                    table.rows.len(),
                    MAX_ROWS - 1,
                ),
            });
        }
        let name = sheet_name(&table.name, taken.len() + 1, &taken);
        let sheet = workbook.add_worksheet();
        sheet.set_name(&name).map_err(xlsx_error)?;
        taken.push(name);

        // Limits were checked above, so these conversions cannot truncate.
        let (Ok(last_row), Ok(last_col)) = (u32::try_from(table.rows.len()), u16::try_from(width))
        else {
            continue;
        };
        for (col, label) in (0u16..).zip(table.header(width)) {
            sheet
                .write_string_with_format(0, col, fit_cell_text(label), &header)
                .map_err(xlsx_error)?;
        }
        for (row, cells) in (1u32..).zip(&table.rows) {
            for (col, cell) in (0u16..).zip(cells) {
                match cell {
                    Cell::Text(text) => sheet.write_string(row, col, fit_cell_text(text)),
                    Cell::Number(n) => sheet.write_number(row, col, *n),
                    Cell::Bool(b) => sheet.write_boolean(row, col, *b),
                    Cell::Date(d) => sheet.write_datetime_with_format(row, col, d, &date),
                    Cell::DateTime(dt) => sheet.write_datetime_with_format(row, col, dt, &datetime),
                    Cell::Link { text, url } if is_linkable(url) => {
                        let link = Url::new(url.trim()).set_text(fit_cell_text(text));
                        // Over-long or malformed URLs fall back to plain text.
                        match sheet.write_url(row, col, link) {
                            Ok(sheet) => Ok(sheet),
                            Err(_) => sheet.write_string(row, col, fit_cell_text(text)),
                        }
                    }
                    Cell::Link { text, .. } => sheet.write_string(row, col, fit_cell_text(text)),
                    Cell::Empty => continue,
                }
                .map_err(xlsx_error)?;
            }
        }
        if width > 0 {
            sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
            sheet
                .autofilter(0, 0, last_row, last_col - 1)
                .map_err(xlsx_error)?;
            sheet.set_autofit_max_width(MAX_COLUMN_PIXELS).autofit();
        }
    }
    workbook.save_to_buffer().map_err(xlsx_error)
}

/// A valid, unique (case-insensitively) Excel sheet name for `wanted`.
fn sheet_name(wanted: &str, position: usize, taken: &[String]) -> String {
    let cleaned: String = wanted
        .chars()
        .map(|c| match c {
            '[' | ']' | ':' | '*' | '?' | '/' | '\\' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim().trim_matches('\'').trim();
    // "History" is reserved by English Excel for its change log.
    let base = if cleaned.is_empty() {
        format!("Sheet{position}")
    } else if cleaned.eq_ignore_ascii_case("history") {
        format!("{cleaned}_")
    } else {
        cleaned.to_owned()
    };
    let is_taken = |name: &str| {
        let lower = name.to_lowercase();
        taken.iter().any(|t| t.to_lowercase() == lower)
    };
    // Cutting may expose an apostrophe, which may not end a name either.
    let stem = |max: usize| truncate_utf16(&base, max).trim_end_matches('\'').to_owned();
    let first = stem(SHEET_NAME_MAX);
    if !is_taken(&first) {
        return first;
    }
    (2..)
        .map(|n| {
            let suffix = format!(" ({n})");
            format!("{}{suffix}", stem(SHEET_NAME_MAX - suffix.len()))
        })
        .find(|name| !is_taken(name))
        .unwrap_or_else(|| format!("Sheet{position}"))
}

/// Cuts text Excel would refuse down to its cell limit.
fn fit_cell_text(text: &str) -> &str {
    truncate_utf16(text, CELL_TEXT_MAX)
}

/// The longest prefix of `text` that is at most `max` UTF-16 units, on a char boundary.
fn truncate_utf16(text: &str, max: usize) -> &str {
    let mut units = 0;
    for (at, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &text[..at];
        }
    }
    text
}

/// The table as CSV with a header row. Text that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or CR) is prefixed with `'`, as OWASP advises.
pub fn to_csv(table: &Table) -> Vec<u8> {
    // Writing to memory cannot fail and `flexible` turns off the only other error
    // (rows of different lengths), so an empty result is unreachable in practice.
    csv_bytes(table).unwrap_or_default()
}

fn csv_bytes(table: &Table) -> Result<Vec<u8>, csv::Error> {
    let width = table.width();
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    writer.write_record(
        table
            .header(width)
            .map(|label| defuse_formula(label).into_owned()),
    )?;
    for row in &table.rows {
        let cells = row.iter().map(|cell| match cell {
            Cell::Text(_) | Cell::Link { .. } => defuse_formula(&cell.plain()).into_owned(),
            other => other.plain().into_owned(),
        });
        let padding = std::iter::repeat_n(String::new(), width - row.len());
        writer.write_record(cells.chain(padding))?;
    }
    writer.into_inner().map_err(|e| e.into_error().into())
}

fn defuse_formula(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The table as a GitHub-flavoured Markdown table. `|` is escaped, line breaks become
/// `<br>`, and `<` becomes `&lt;` so cell text cannot smuggle HTML into a rendered page.
pub fn to_markdown_table(table: &Table) -> String {
    let width = table.width().max(1);
    let mut out = String::new();
    let row = |out: &mut String, cells: Vec<String>| {
        out.push('|');
        for cell in cells {
            out.push(' ');
            out.push_str(&cell);
            out.push_str(" |");
        }
        out.push('\n');
    };
    row(&mut out, table.header(width).map(escape_markdown).collect());
    row(&mut out, vec!["---".to_owned(); width]);
    for cells in &table.rows {
        let rendered = cells
            .iter()
            .map(|cell| match cell {
                Cell::Link { text, url } if is_linkable(url) => {
                    let text = escape_markdown(text)
                        .replace('[', "\\[")
                        .replace(']', "\\]");
                    format!("[{text}]({})", link_target(url))
                }
                Cell::Link { text, .. } => escape_markdown(text),
                other => escape_markdown(&other.plain()),
            })
            .chain(std::iter::repeat(String::new()))
            .take(width)
            .collect();
        row(&mut out, rendered);
    }
    out
}

fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// A URL made safe to sit inside `(...)` in a table cell.
fn link_target(url: &str) -> String {
    url.trim()
        .replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C")
}

/// The tables as pretty JSON: `[{"name", "columns", "rows": [[value, ...]]}]`.
pub fn to_json(tables: &[Table]) -> Result<String, WorkspaceError> {
    serde_json::to_string_pretty(tables).map_err(|e| WorkspaceError::Report {
        format: "json",
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, DataType, Reader, Xlsx};

    fn sample() -> Table {
        let date = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();
        let mut table = Table::new(
            "Q1: invoices [draft]",
            ["Client", "Amount", "Paid", "Due", "Link"],
        );
        table.rows.push(vec![
            "ACME | Corp\nEU".into(),
            Cell::Number(1200.5),
            true.into(),
            date.into(),
            Cell::Link {
                text: "invoice".into(),
                url: "https://example.com/a b".into(),
            },
        ]);
        table.rows.push(vec![
            "=HYPERLINK(\"http://evil\")".into(),
            Cell::Empty,
            Cell::Bool(false),
            Cell::DateTime(date.and_hms_opt(9, 30, 0).unwrap()),
            Cell::Link {
                text: "<script>".into(),
                url: "javascript:alert(1)".into(),
            },
            "extra".into(),
        ]);
        table
    }

    #[test]
    fn sheet_names_follow_excels_rules() {
        let mut taken = Vec::new();
        for wanted in [
            "Q1: invoices [draft]",
            "a/b\\c*d?e",
            "",
            "'quoted'",
            "History",
            "A very long sheet name that goes on and on",
            "a very long sheet name that goes on and on",
            "Sheet3",
            "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
        ] {
            let name = sheet_name(wanted, taken.len() + 1, &taken);
            assert!(name.encode_utf16().count() <= SHEET_NAME_MAX, "{name}");
            assert!(
                !name.contains(['[', ']', ':', '*', '?', '/', '\\']),
                "{name}"
            );
            taken.push(name);
        }
        assert_eq!(
            taken,
            [
                "Q1_ invoices _draft_",
                "a_b_c_d_e",
                "Sheet3",
                "quoted",
                "History_",
                "A very long sheet name that goe",
                "a very long sheet name that (2)",
                "Sheet3 (2)",
                "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
            ]
        );
    }

    #[test]
    fn xlsx_has_one_sheet_per_table_with_typed_cells() {
        let tables = [
            sample(),
            Table::new("Empty", Vec::<String>::new()),
            Table::new("empty", ["x"]),
        ];
        let bytes = to_xlsx(&tables).unwrap();
        assert!(bytes.starts_with(b"PK"));

        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(
            book.sheet_names(),
            ["Q1_ invoices _draft_", "Empty", "empty (2)"]
        );
        let range = book.worksheet_range("Q1_ invoices _draft_").unwrap();
        assert_eq!(range.get((0, 0)), Some(&Data::String("Client".into())));
        assert_eq!(range.get((1, 1)), Some(&Data::Float(1200.5)));
        assert_eq!(range.get((1, 2)), Some(&Data::Bool(true)));
        let due = range.get((1, 3)).and_then(|d| d.as_date());
        assert_eq!(due, NaiveDate::from_ymd_opt(2025, 3, 31));
        // Formula-looking text stays text in xlsx.
        assert_eq!(
            range.get((2, 0)),
            Some(&Data::String("=HYPERLINK(\"http://evil\")".into()))
        );
        assert_eq!(range.get((2, 4)), Some(&Data::String("<script>".into())));
        assert_eq!(range.get((2, 5)), Some(&Data::String("extra".into())));
    }

    #[test]
    fn xlsx_refuses_tables_excel_cannot_hold() {
        let wide = Table::new("wide", (0..=MAX_COLUMNS).map(|i| i.to_string()));
        let err = to_xlsx(&[wide]).unwrap_err();
        assert!(err.to_string().contains("split it"), "{err}");
    }

    #[test]
    fn csv_pads_rows_and_defuses_formulas() {
        let csv = String::from_utf8(to_csv(&sample())).unwrap();
        assert_eq!(
            csv,
            "Client,Amount,Paid,Due,Link,\n\
             \"ACME | Corp\nEU\",1200.5,true,2025-03-31,https://example.com/a b,\n\
             \"'=HYPERLINK(\"\"http://evil\"\")\",,false,2025-03-31 09:30:00,javascript:alert(1),extra\n"
        );
        assert_eq!(to_csv(&Table::new("n", ["-x"])), b"'-x\n");
    }

    #[test]
    fn markdown_escapes_pipes_newlines_and_html() {
        let md = to_markdown_table(&sample());
        assert_eq!(
            md,
            "| Client | Amount | Paid | Due | Link |  |\n\
             | --- | --- | --- | --- | --- | --- |\n\
             | ACME \\| Corp<br>EU | 1200.5 | true | 2025-03-31 | [invoice](https://example.com/a%20b) |  |\n\
             | =HYPERLINK(\"http://evil\") |  | false | 2025-03-31 09:30:00 | &lt;script> | extra |\n"
        );
        assert_eq!(to_markdown_table(&Table::default()), "|  |\n| --- |\n");
    }

    #[test]
    fn json_uses_plain_values() {
        let json: serde_json::Value = serde_json::from_str(&to_json(&[sample()]).unwrap()).unwrap();
        assert_eq!(json[0]["name"], "Q1: invoices [draft]");
        assert_eq!(
            json[0]["rows"][0],
            serde_json::json!([
                "ACME | Corp\nEU",
                1200.5,
                true,
                "2025-03-31",
                {"text": "invoice", "url": "https://example.com/a b"}
            ])
        );
        assert_eq!(json[0]["rows"][1][1], serde_json::Value::Null);
    }
}

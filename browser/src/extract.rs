//! Extraction: HTML → records, by a schema (item selector + fields) or from a table's header row.
//!
//! Pure and synchronous: it works on a live page's HTML, a saved file, or thousands of saved files
//! in parallel (`extract_files`, one page per rayon task).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rayon::prelude::*;
use scraper::{ElementRef, Html, Selector};
use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// One extracted item: field name → value (string, null, or list of strings), in schema order.
pub type Record = IndexMap<String, Value>;

/// A field as written in a schema file: `"css"`, `"css@attr"`, or the long form.
#[derive(Debug, Clone)]
enum RawField {
    Short(String),
    Long(LongField),
}

/// The long form of a field; a key it does not know is an error (a typo such as `optinal` must
/// not silently make the field required).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LongField {
    css: String,
    #[serde(default)]
    attr: Option<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    list: bool,
}

// By hand rather than `#[serde(untagged)]`: an untagged enum swallows the inner error (and with
// it the unknown key and its line), answering only "did not match any variant".
impl<'de> Deserialize<'de> for RawField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a selector string or a map with css, attr, optional, list")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<RawField, E> {
                Ok(RawField::Short(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawField, A::Error> {
                LongField::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawField::Long)
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    items: String,
    fields: IndexMap<String, RawField>,
    #[serde(default)]
    next: Option<String>,
}

/// Every word the schema parser's messages may contain. A schema may be any file a job names,
/// so its errors say where and what was expected, never the text found there (issue 14); the
/// `extract_schema` fuzz target checks that an error shows no other word.
pub(crate) const MESSAGE_WORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "appears",
    "at",
    "attr",
    "bad",
    "brackets",
    "check",
    "column",
    "combinators",
    "css",
    "empty",
    "extraction",
    "field",
    "fields",
    "has",
    "is",
    "items",
    "its",
    "json",
    "key",
    "least",
    "line",
    "list",
    "long",
    "map",
    "maps",
    "missing",
    "name",
    "names",
    "neither",
    "next",
    "no",
    "nor",
    "not",
    "of",
    "one",
    "only",
    "optional",
    "or",
    "quotes",
    "required",
    "schema",
    "selector",
    "string",
    "strings",
    "the",
    "twice",
    "type",
    "unknown",
    "valid",
    "value",
    "write",
    "wrong",
    "yaml",
    "form",
    "to",
    "item",
    "are",
    "nested",
    "too",
    "deeply",
];

/// What is wrong with a schema serde_norway refused, without the text it found: serde's
/// messages quote values, unknown keys and the path of keys to them.
fn yaml_problem(e: &serde_norway::Error) -> String {
    let msg = e.to_string();
    let what = if msg.contains("unknown field") {
        "an unknown key; a schema has only `items`, `fields` and `next`, and a long-form field only `css`, `attr`, `optional` and `list`"
    } else if msg.contains("missing field `items`") {
        "`items` is missing; name the CSS selector of one item"
    } else if msg.contains("missing field `fields`") {
        "`fields` is missing; map names to \"css\", \"css@attr\" or {css, attr, optional, list}"
    } else if msg.contains("missing field `css`") {
        "a long-form field has no `css`"
    } else if msg.contains("did not match any variant") {
        "a field is neither a string nor {css, attr, optional, list}"
    } else if msg.contains("invalid type") || msg.contains("invalid value") {
        "a value has the wrong type; `items` and `next` are strings, `fields` maps names to \"css\", \"css@attr\" or {css, attr, optional, list}"
    } else if msg.contains("duplicate") {
        "a key appears twice"
    } else if msg.contains("recursion limit") {
        "the value is nested too deeply"
    } else {
        "not valid YAML or JSON"
    };
    match e.location() {
        Some(l) => format!("{what} (line {} column {})", l.line(), l.column()),
        None => what.to_string(),
    }
}

/// 1-based line of the first line of `text` containing `needle`, as " (line N)".
fn line_hint(text: &str, needle: &str) -> String {
    match text
        .lines()
        .position(|l| !needle.is_empty() && l.contains(needle))
    {
        Some(i) => format!(" (line {})", i + 1),
        None => String::new(),
    }
}

/// A compiled field.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    css: String,
    /// `None`: the item element itself (`"@data-id"` reads the item's own attribute).
    selector: Option<Selector>,
    attr: Option<String>,
    optional: bool,
    list: bool,
}

/// A compiled extraction schema. Load with [`Schema::from_file`] or [`Schema::parse`].
#[derive(Debug, Clone)]
pub struct Schema {
    items: Selector,
    items_css: String,
    fields: Vec<Field>,
    next: Option<(Selector, String)>,
}

/// Compile `css`; `what` names where it is (never its text, see [`MESSAGE_WORDS`]).
fn selector(css: &str, what: &str) -> Result<Selector> {
    Selector::parse(css).map_err(|_| Error::Schema {
        path: None,
        message: format!(
            "{what} is not a valid CSS selector; check its brackets, quotes and combinators"
        ),
    })
}

/// Split `css@attr` (an `@` inside brackets, e.g. `a[href*="@"]`, is not a split point).
fn split_attr(s: &str) -> (String, Option<String>) {
    let mut depth = 0i32;
    let mut at = None;
    for (i, c) in s.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            '@' if depth == 0 => at = Some(i),
            _ => {}
        }
    }
    match at {
        Some(i) => (
            s[..i].trim().to_string(),
            Some(s[i + 1..].trim().to_string()),
        ),
        None => (s.trim().to_string(), None),
    }
}

impl Schema {
    /// Parse a schema from YAML or JSON text (JSON is YAML).
    pub fn parse(text: &str) -> Result<Schema> {
        let raw: RawSchema = serde_norway::from_str(text).map_err(|e| Error::Schema {
            path: None,
            message: yaml_problem(&e),
        })?;
        if raw.fields.is_empty() {
            return Err(Error::Schema {
                path: None,
                message: "`fields` is empty; name at least one field".into(),
            });
        }
        let mut fields = Vec::new();
        for (i, (name, f)) in raw.fields.into_iter().enumerate() {
            // Fields are named by position and line: their names are the file's text.
            let mut line = line_hint(text, &format!("{name}:"));
            if line.is_empty() {
                line = line_hint(text, &format!("\"{name}\""));
            }
            let which = format!("field {}{line}", i + 1);
            let (css, attr, optional, list) = match f {
                RawField::Short(s) => {
                    let (css, attr) = split_attr(&s);
                    (css, attr, false, false)
                }
                RawField::Long(LongField {
                    css,
                    attr,
                    optional,
                    list,
                }) => {
                    let (css, at) = split_attr(&css);
                    (css, attr.or(at), optional, list)
                }
            };
            let selector = if css.is_empty() {
                None
            } else {
                Some(selector(&css, &which)?)
            };
            if selector.is_none() && attr.is_none() {
                return Err(Error::Schema {
                    path: None,
                    message: format!(
                        "{which} names no selector; write \"css\", \"css@attr\" or \"@attr\""
                    ),
                });
            }
            fields.push(Field {
                name,
                css,
                selector,
                attr,
                optional,
                list,
            });
        }
        let next = match raw.next {
            Some(n) => {
                let (css, attr) = split_attr(&n);
                Some((
                    selector(&css, &format!("`next`{}", line_hint(text, "next:")))?,
                    attr.unwrap_or_else(|| "href".into()),
                ))
            }
            None => None,
        };
        Ok(Schema {
            items: selector(&raw.items, &format!("`items`{}", line_hint(text, "items:")))?,
            items_css: raw.items,
            fields,
            next,
        })
    }

    /// Read and parse a schema file (`.yaml`, `.yml` or `.json`).
    pub fn from_file(path: &Path) -> Result<Schema> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Schema::parse(&text).map_err(|e| match e {
            Error::Schema { message, .. } => Error::Schema {
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })
    }

    /// The item selector as written.
    pub fn items_css(&self) -> &str {
        &self.items_css
    }

    /// Field names in order (CSV header).
    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }

    /// Extract every item of one page. `base` resolves relative `href`/`src` values and the next link.
    pub fn extract(&self, html: &str, base: Option<&url::Url>) -> Result<Page> {
        let doc = Html::parse_document(html);
        let mut records = Vec::new();
        for (i, item) in doc.select(&self.items).enumerate() {
            let mut rec = Record::with_capacity(self.fields.len());
            for f in &self.fields {
                let matches: Vec<ElementRef<'_>> = match &f.selector {
                    Some(sel) => item.select(sel).collect(),
                    None => vec![item],
                };
                let value = if f.list {
                    Value::Array(
                        matches
                            .iter()
                            .filter_map(|e| value_of(*e, f.attr.as_deref(), base))
                            .map(Value::String)
                            .collect(),
                    )
                } else {
                    match matches.iter().find_map(|e| value_of(*e, f.attr.as_deref(), base)) {
                        Some(v) => Value::String(v),
                        None if f.optional => Value::Null,
                        None => {
                            return Err(Error::Schema {
                                path: None,
                                message: format!(
                                    "item {} (of {:?}) has no {:?} ({}{}); mark the field `optional: true` if that is expected",
                                    i + 1,
                                    self.items_css,
                                    f.name,
                                    f.css,
                                    f.attr.as_deref().map(|a| format!("@{a}")).unwrap_or_default()
                                ),
                            })
                        }
                    }
                };
                rec.insert(f.name.clone(), value);
            }
            records.push(rec);
        }
        let next = self.next.as_ref().and_then(|(sel, attr)| {
            doc.select(sel)
                .find_map(|e| e.value().attr(attr))
                .map(|h| resolve(h, base))
        });
        Ok(Page { records, next })
    }
}

/// What one page yielded.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The items.
    pub records: Vec<Record>,
    /// The next page's URL (resolved against the base if one was given).
    pub next: Option<String>,
}

fn value_of(e: ElementRef<'_>, attr: Option<&str>, base: Option<&url::Url>) -> Option<String> {
    match attr {
        Some(a) => e.value().attr(a).map(|v| {
            if matches!(a, "href" | "src") {
                resolve(v, base)
            } else {
                v.trim().to_string()
            }
        }),
        None => Some(text(e)),
    }
}

fn resolve(v: &str, base: Option<&url::Url>) -> String {
    match base.and_then(|b| b.join(v.trim()).ok()) {
        Some(u) => u.to_string(),
        None => v.trim().to_string(),
    }
}

/// Text content, trimmed, with runs of whitespace collapsed to one space.
fn text(e: ElementRef<'_>) -> String {
    let mut out = String::new();
    for t in e.text() {
        for w in t.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
        }
    }
    out
}

/// Turn an HTML table into records keyed by its header row. `css` picks the table (default: the
/// first table that has a header row).
pub fn extract_table(html: &str, css: Option<&str>) -> Result<Vec<Record>> {
    let doc = Html::parse_document(html);
    let table_sel = selector(css.unwrap_or("table"), "--table")?;
    let row_sel = selector("tr", "rows")?;
    let cell_sel = selector("th, td", "cells")?;
    let th_sel = selector("th", "headers")?;
    let tables: Vec<_> = doc.select(&table_sel).collect();
    let table = if css.is_some() {
        tables.first().copied()
    } else {
        tables
            .iter()
            .copied()
            .find(|t| t.select(&th_sel).next().is_some())
            .or(tables.first().copied())
    }
    .ok_or_else(|| {
        Error::Invalid(format!(
            "no table matches {:?} on this page",
            css.unwrap_or("table")
        ))
    })?;
    // Rows of this table only, not of tables nested inside it.
    let rows: Vec<ElementRef> = table
        .select(&row_sel)
        .filter(|r| {
            r.ancestors()
                .filter_map(ElementRef::wrap)
                .find(|a| a.value().name() == "table")
                == Some(table)
        })
        .collect();
    let Some(header_row) = rows.first() else {
        return Ok(Vec::new());
    };
    let mut headers: Vec<String> = Vec::new();
    for (i, c) in header_row.select(&cell_sel).enumerate() {
        let mut h = text(c);
        if h.is_empty() {
            h = format!("column_{}", i + 1);
        }
        // Keep keys unique: "Name", "Name_2".
        let base = h.clone();
        let mut k = 2;
        while headers.contains(&h) {
            h = format!("{base}_{k}");
            k += 1;
        }
        headers.push(h);
    }
    let mut out = Vec::new();
    for row in &rows[1..] {
        let cells: Vec<String> = row.select(&cell_sel).map(text).collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        let mut rec = Record::new();
        for (i, h) in headers.iter().enumerate() {
            rec.insert(
                h.clone(),
                cells
                    .get(i)
                    .cloned()
                    .map(Value::String)
                    .unwrap_or(Value::Null),
            );
        }
        out.push(rec);
    }
    Ok(out)
}

/// Totals of a batch extraction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Files read.
    pub pages: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Records produced.
    pub records: usize,
}

/// Extract many saved pages in parallel (all cores). Results keep the input order.
pub fn extract_files(paths: &[PathBuf], schema: &Schema) -> (Vec<Result<Vec<Record>>>, BatchStats) {
    let results: Vec<(u64, Result<Vec<Record>>)> = paths
        .par_iter()
        .map(|p| match std::fs::read(p) {
            Err(e) => (0, Err(Error::io(p, e))),
            Ok(bytes) => {
                let html = String::from_utf8_lossy(&bytes);
                let r = schema
                    .extract(&html, None)
                    .map(|pg| pg.records)
                    .map_err(|e| with_path(e, p));
                (bytes.len() as u64, r)
            }
        })
        .collect();
    let mut stats = BatchStats {
        pages: paths.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(results.len());
    for (b, r) in results {
        stats.bytes += b;
        if let Ok(recs) = &r {
            stats.records += recs.len();
        }
        out.push(r);
    }
    (out, stats)
}

fn with_path(e: Error, p: &Path) -> Error {
    match e {
        Error::Schema { message, .. } => Error::Schema {
            path: Some(p.to_path_buf()),
            message,
        },
        other => other,
    }
}

/// Output formats for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// Comma-separated, header row first; lists joined with "; ".
    Csv,
    /// One JSON array.
    Json,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(Error::Invalid(format!(
                "unknown format {other:?}; expected jsonl, csv or json"
            ))),
        }
    }
}

/// Write records in a format. CSV columns follow `columns` (or the first record's keys).
pub fn write_records<W: std::io::Write>(
    out: W,
    records: &[Record],
    format: Format,
    columns: Option<&[String]>,
) -> Result<()> {
    let werr = |f: &'static str| {
        move |e: std::fmt::Arguments| Error::Output {
            format: f,
            message: e.to_string(),
        }
    };
    match format {
        Format::Jsonl => {
            let mut out = std::io::BufWriter::new(out);
            for r in records {
                serde_json::to_writer(&mut out, r)
                    .map_err(|e| werr("jsonl")(format_args!("{e}")))?;
                std::io::Write::write_all(&mut out, b"\n")
                    .map_err(|e| werr("jsonl")(format_args!("{e}")))?;
            }
            std::io::Write::flush(&mut out).map_err(|e| werr("jsonl")(format_args!("{e}")))?;
        }
        Format::Json => {
            let mut out = std::io::BufWriter::new(out);
            serde_json::to_writer_pretty(&mut out, records)
                .map_err(|e| werr("json")(format_args!("{e}")))?;
            std::io::Write::write_all(&mut out, b"\n")
                .map_err(|e| werr("json")(format_args!("{e}")))?;
        }
        Format::Csv => {
            let cols: Vec<String> = match columns {
                Some(c) => c.to_vec(),
                None => records
                    .first()
                    .map(|r| r.keys().cloned().collect())
                    .unwrap_or_default(),
            };
            let mut w = csv::Writer::from_writer(out);
            w.write_record(&cols)
                .map_err(|e| werr("csv")(format_args!("{e}")))?;
            for r in records {
                let row: Vec<String> = cols
                    .iter()
                    .map(|c| match r.get(c) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Array(a)) => a
                            .iter()
                            .map(|v| {
                                v.as_str()
                                    .map(String::from)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                        Some(other) => other.to_string(),
                    })
                    .collect();
                w.write_record(&row)
                    .map_err(|e| werr("csv")(format_args!("{e}")))?;
            }
            w.flush().map_err(|e| werr("csv")(format_args!("{e}")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<ul>
      <li class="p"><a class="t" href="/x/1">  One
         thing </a><span class="price">$1</span><i class="tag">a</i><i class="tag">b</i></li>
      <li class="p"><a class="t" href="2.html">Two</a><span class="price">$2</span><img src="i.png"></li>
    </ul><a class="next" href="page-2.html">Next</a>"#;

    fn schema() -> Schema {
        Schema::parse(
            r#"
items: "li.p"
fields:
  name: "a.t"
  url: "a.t@href"
  price: { css: ".price" }
  image: { css: "img", attr: "src", optional: true }
  tags: { css: ".tag", list: true }
next: "a.next@href"
"#,
        )
        .unwrap()
    }

    #[test]
    fn extracts_fields_in_order_with_text_collapsed_and_urls_resolved() {
        let base = url::Url::parse("http://h/shop/page-1.html").unwrap();
        let page = schema().extract(PAGE, Some(&base)).unwrap();
        assert_eq!(page.records.len(), 2);
        let r = &page.records[0];
        assert_eq!(
            r.keys().cloned().collect::<Vec<_>>(),
            ["name", "url", "price", "image", "tags"]
        );
        assert_eq!(r["name"], "One thing");
        assert_eq!(r["url"], "http://h/x/1");
        assert_eq!(r["image"], Value::Null);
        assert_eq!(r["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(page.records[1]["image"], "http://h/shop/i.png");
        assert_eq!(page.next.as_deref(), Some("http://h/shop/page-2.html"));
    }

    #[test]
    fn a_missing_required_field_names_the_item_and_field() {
        let s = Schema::parse("items: li.p\nfields:\n  image: img@src\n").unwrap();
        let e = s.extract(PAGE, None).unwrap_err().to_string();
        assert!(
            e.contains("item 1") && e.contains("\"image\"") && e.contains("optional"),
            "{e}"
        );
    }

    #[test]
    fn bad_schemas_are_explained() {
        let e = Schema::parse("items: li\nfields:\n  a: \"p[\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "bad extraction schema: field 1 (line 3) is not a valid CSS selector; check its brackets, quotes and combinators"
        );
        assert!(Schema::parse("items: li\nfields: {}\n")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(Schema::parse("items: li\nfield: {}\n").is_err());
        assert_eq!(
            split_attr(r#"a[href*="@"]@href"#),
            (r#"a[href*="@"]"#.to_string(), Some("href".to_string()))
        );
    }

    #[test]
    fn schema_errors_say_where_but_never_show_the_schemas_text() {
        for (text, expected) in [
            // Each was shown whole before (issue 14: a schema may be any file a job names).
            ("ALLOWED-CANARY-0d3e\n", "a value has the wrong type"),
            (
                r#"{"items": "li", "fields": {"n": "a"}, "KEYED-CANARY-77b2": 1}"#,
                "an unknown key",
            ),
            (
                "items: li\nfields:\n  SECRET-NAME: \"p{SECRET-CSS\"\n",
                "field 1 (line 3)",
            ),
            ("items: \"SECRET[\"\nfields:\n  a: b\n", "`items` (line 1)"),
            (
                "items: li\nfields:\n  a: b\nnext: SECRET(\n",
                "`next` (line 4)",
            ),
            ("items: li\nfields: [SECRET\n", "(line 2 column 9)"),
        ] {
            let e = Schema::parse(text).unwrap_err().to_string();
            assert!(!e.contains("SECRET") && !e.contains("CANARY"), "{e}");
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let e = Schema::parse("items: li\nfields:\n  title:\n    css: h2\n    optinal: true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("an unknown key") && e.contains("(line 5 column 5)"),
            "{e}"
        );
        assert!(!e.contains("optinal") && !e.contains("title"), "{e}");
        let e = Schema::parse("items: li\nfields: {a: b}\nnxt: a\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("an unknown key") && e.contains("line 3"), "{e}");
        // A field that is neither a string nor a map says what it may be.
        let e = Schema::parse("items: li\nfields:\n  a: [S3CRET]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wrong type") && !e.contains("S3CRET"), "{e}");
    }

    #[test]
    fn an_empty_selector_reads_the_item_itself() {
        let s =
            Schema::parse("items: li\nfields:\n  id: \"@data-id\"\n  text: \"\"\n").unwrap_err();
        assert!(s.to_string().contains("names no selector"), "{s}");
        let s = Schema::parse("items: li\nfields:\n  id: \"@data-id\"\n").unwrap();
        let pg = s.extract("<ul><li data-id=7>x</li></ul>", None).unwrap();
        assert_eq!(pg.records[0]["id"], "7");
    }

    #[test]
    fn tables_use_their_header_row() {
        let html = "<table><tr><td>x</td></tr></table><table id=t><thead><tr><th>Name</th><th></th><th>Name</th></tr></thead>\
                    <tbody><tr><td>Ada</td><td>1</td><td>L</td></tr><tr><td></td><td></td><td></td></tr><tr><td>Bo</td></tr></tbody></table>";
        let rows = extract_table(html, None).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].keys().cloned().collect::<Vec<_>>(),
            ["Name", "column_2", "Name_2"]
        );
        assert_eq!(rows[1]["column_2"], Value::Null);
        assert!(extract_table("<p>no</p>", None).is_err());
    }

    #[test]
    fn csv_joins_lists_and_blanks_nulls() {
        let page = schema().extract(PAGE, None).unwrap();
        let mut out = Vec::new();
        write_records(
            &mut out,
            &page.records,
            Format::Csv,
            Some(&schema().field_names()),
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("name,url,price,image,tags\n"), "{s}");
        assert!(s.contains("One thing,/x/1,$1,,a; b"), "{s}");
    }
}

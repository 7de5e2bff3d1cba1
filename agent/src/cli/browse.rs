//! `deskhand browse …`: the browser engine from the command line. Scripts call these; the flags
//! and the `--json` report shapes are stable.

use crate::cli::safe_text::print_json;
use crate::{errln, outln};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use deskhand_browser::extract::{self, Format, Schema};
use deskhand_browser::{Browser, FillRequest, Locator, Page, ScrollUntil, Shot, Submit};

use super::BrowserArgs;
use crate::config::Config;
use deskhand_workspace::atomic_write;

/// `deskhand browse`.
#[derive(Debug, Args)]
pub struct BrowseArgs {
    #[command(subcommand)]
    command: BrowseCommand,
    #[command(flatten)]
    browser: BrowserArgs,
}

#[derive(Debug, Subcommand)]
enum BrowseCommand {
    /// Fill a form by its labels: --field 'Email=a@b.c' --field 'Subscribe=true'.
    Fill {
        /// Page with the form.
        url: String,
        /// `Label=value`, repeatable. Labels are matched as a person reads them.
        #[arg(long = "field", value_name = "LABEL=VALUE")]
        fields: Vec<String>,
        /// A JSON file: an object {"Label": value} or an array [{"label":…, "value":…}].
        #[arg(long, value_name = "FILE")]
        values: Option<PathBuf>,
        /// Click this button (or link) afterwards.
        #[arg(long, value_name = "TEXT", conflicts_with = "submit_form")]
        submit: Option<String>,
        /// Submit the form itself afterwards (as Enter would).
        #[arg(long)]
        submit_form: bool,
        /// Fill what matches and report the rest instead of failing.
        #[arg(long)]
        partial: bool,
        /// Save a screenshot after filling (and submitting).
        #[arg(long, value_name = "PNG")]
        screenshot: Option<PathBuf>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Extract records from a page (or saved HTML file) with a schema, or a table by its header row.
    Extract {
        /// URL, or a path to a saved .html file.
        source: String,
        /// Schema file (YAML or JSON): items, fields, optional next.
        #[arg(long, conflicts_with = "table", required_unless_present = "table")]
        schema: Option<PathBuf>,
        /// Turn a table into records; optional CSS picks which table.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        table: Option<String>,
        /// jsonl (default), csv or json.
        #[arg(long, default_value = "jsonl")]
        format: Format,
        /// Write here (atomically) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Follow the schema's `next` link at most this many pages.
        #[arg(long, default_value_t = 10)]
        max_pages: usize,
        /// Scroll until nothing new loads before extracting (infinite-scroll pages).
        #[arg(long)]
        scroll: bool,
    },
    /// Scroll until N items match a selector, or until nothing new appears.
    Scroll {
        /// Page to scroll.
        url: String,
        /// CSS selector of the items to count.
        #[arg(long)]
        until: String,
        /// Stop when this many items match.
        #[arg(long)]
        count: Option<usize>,
        /// Stop when nothing new appears for this long (ms).
        #[arg(long, default_value_t = 1500)]
        idle_ms: u64,
        /// Cap on scroll steps.
        #[arg(long, default_value_t = 500)]
        max_steps: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Click a button, link or element (by text, or `css=`, `role=…`).
    Click {
        /// Page to open.
        url: String,
        /// What to click.
        target: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Save a PNG of the page, the full page, or one element.
    Screenshot {
        /// Page to open.
        url: String,
        /// Output PNG.
        out: PathBuf,
        /// Only this element (label, text, css=…).
        #[arg(long, conflicts_with = "full_page")]
        element: Option<String>,
        /// The whole scrollable page (CDP backend).
        #[arg(long)]
        full_page: bool,
    },
}

/// Run `deskhand browse …`.
pub async fn run(args: BrowseArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let opts = args.browser.launch_options(workspace, config)?;
    // Saved files need no browser.
    if let BrowseCommand::Extract {
        source,
        schema,
        table,
        format,
        out,
        max_pages,
        scroll: false,
    } = &args.command
    {
        if !source.contains("://") {
            return extract_file(
                Path::new(source),
                schema.as_deref(),
                table.as_deref(),
                *format,
                out.as_deref(),
                *max_pages,
            );
        }
    }
    let browser = Browser::launch(opts).await?;
    let page = browser.new_page().await?;
    let result = run_on_page(&page, args.command, workspace).await;
    let _ = page.close().await;
    browser.close().await?;
    result
}

async fn run_on_page(page: &Page, command: BrowseCommand, workspace: &Path) -> anyhow::Result<()> {
    match command {
        BrowseCommand::Fill {
            url,
            fields,
            values,
            submit,
            submit_form,
            partial,
            screenshot,
            json,
        } => {
            let mut req = FillRequest::from_pairs(&fields)?;
            if let Some(file) = values {
                let mut from_file = load_values(&file)?;
                from_file.fields.extend(req.fields);
                req.fields = from_file.fields;
            }
            if req.fields.is_empty() {
                bail!("nothing to fill: give --field 'Label=value' (repeatable) or --values FILE.json");
            }
            req.submit = match (submit, submit_form) {
                (Some(b), _) => Some(Submit::Button(b)),
                (None, true) => Some(Submit::Form),
                _ => None,
            };
            req.allow_partial = partial;
            page.goto(&url).await?;
            let report = match page.fill(&req).await {
                Ok(r) => r,
                Err(deskhand_browser::Error::Fill {
                    report,
                    failed,
                    total,
                }) if json => {
                    print_json(&serde_json::json!({"ok": false, "report": report}), false)?;
                    bail!("form fill failed for {} of {total} fields", failed.len());
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(s) = &report.submit {
                // The person typed the command, so nobody is asked; what left is still recorded,
                // as a job's submit is (the landed URL without its query: a GET form's fields).
                crate::store::Store::open(workspace)?.audit().record(
                    "form.submitted",
                    None,
                    serde_json::json!({"url": crate::guard::without_query(&url),
                           "button": match &req.submit {
                               Some(Submit::Button(b)) => Some(b.as_str()),
                               _ => None,
                           },
                           "element": s.element,
                           "landed_on": crate::guard::without_query(&report.url),
                           "via": "deskhand browse"}),
                );
            }
            if let Some(png) = screenshot {
                let bytes = page.screenshot(&Shot::Viewport).await?;
                atomic_write(&png, &bytes).with_context(|| format!("writing {}", png.display()))?;
            }
            if json {
                print_json(
                    &serde_json::json!({"ok": report.all_ok(), "report": report}),
                    false,
                )?;
            } else {
                for d in &report.dismissed {
                    outln!("· closed a popup over the form: {d}")?;
                }
                for f in &report.fields {
                    match (&f.matched, &f.value) {
                        (Some(m), Some(v)) => outln!(
                            "✓ {:<24} → {} ({} {}) = {}",
                            f.key,
                            m.element,
                            m.score,
                            m.how,
                            v
                        )?,
                        _ => outln!("✗ {}", f.describe())?,
                    }
                    // Widgets say how they were set (a date picker stepped, an option picked).
                    if let (Some(w), Some(how)) = (&f.widget, &f.set_by) {
                        outln!("  {w}: {how}")?;
                    }
                }
                if let Some(s) = &report.submit {
                    outln!(
                        "submitted with {} ({}); navigated: {}",
                        s.element,
                        s.how,
                        s.navigated
                    )?;
                }
                outln!(
                    "{} fields in {} ms, {} round trip(s); now at {}",
                    report.fields.len(),
                    report.elapsed_ms,
                    report.attempts,
                    report.url
                )?;
            }
            Ok(())
        }
        BrowseCommand::Extract {
            source,
            schema,
            table,
            format,
            out,
            max_pages,
            scroll,
        } => {
            page.goto(&source).await?;
            if scroll {
                // Load the whole feed first: count the schema's items (or table rows) until no more come.
                let items = match &schema {
                    Some(s) => Schema::from_file(s)?.items_css().to_string(),
                    None => "tr".to_string(),
                };
                page.scroll_until(&ScrollUntil::new(items, None)).await?;
            }
            let (records, columns) = match (schema, table) {
                (Some(path), _) => {
                    let sc = Schema::from_file(&path)?;
                    let (all, _) = page.extract_pages(&sc, max_pages).await?;
                    (all, Some(sc.field_names()))
                }
                (None, Some(css)) => {
                    let html = page.html().await?;
                    (
                        extract::extract_table(
                            &html,
                            Some(css.as_str()).filter(|c| !c.is_empty()),
                        )?,
                        None,
                    )
                }
                (None, None) => bail!("give --schema FILE or --table"),
            };
            emit(&records, format, columns.as_deref(), out.as_deref())
        }
        BrowseCommand::Scroll {
            url,
            until,
            count,
            idle_ms,
            max_steps,
            json,
        } => {
            page.goto(&url).await?;
            let mut s = ScrollUntil::new(until, count);
            s.idle = std::time::Duration::from_millis(idle_ms);
            s.max_steps = max_steps;
            let report = page.scroll_until(&s).await?;
            if json {
                print_json(&report, false)?;
            } else {
                outln!(
                    "{} items after {} steps ({:?}, {} ms)",
                    report.items,
                    report.steps,
                    report.stopped,
                    report.elapsed_ms
                )?;
            }
            Ok(())
        }
        BrowseCommand::Click { url, target, json } => {
            page.goto(&url).await?;
            let report = page.click(&Locator::clickable(&target)?).await?;
            if json {
                print_json(&report, false)?;
            } else {
                outln!(
                    "clicked {}; navigated: {}; now at {}",
                    report.element,
                    report.navigated,
                    report.url
                )?;
            }
            Ok(())
        }
        BrowseCommand::Screenshot {
            url,
            out,
            element,
            full_page,
        } => {
            page.goto(&url).await?;
            let shot = match (element, full_page) {
                (Some(e), _) => {
                    Shot::Element(Locator::parse_with(&e, |value| Locator::Text { value })?)
                }
                (None, true) => Shot::FullPage,
                (None, false) => Shot::Viewport,
            };
            let bytes = page.screenshot(&shot).await?;
            atomic_write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            outln!("{} ({} bytes)", out.display(), bytes.len())?;
            Ok(())
        }
    }
}

/// Values from a JSON file: `{"Label": value, …}` or `[{"label": …, "value": …}, …]`.
pub fn load_values(path: &Path) -> anyhow::Result<FillRequest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    match v {
        serde_json::Value::Object(map) => Ok(FillRequest::from_map(&map)),
        serde_json::Value::Array(items) => {
            let mut req = FillRequest::default();
            for (i, item) in items.iter().enumerate() {
                let label = item["label"].as_str().with_context(|| {
                    format!("{}: item {} has no \"label\"", path.display(), i + 1)
                })?;
                let value = item.get("value").cloned().with_context(|| {
                    format!("{}: item {} has no \"value\"", path.display(), i + 1)
                })?;
                req.fields.push((label.to_string(), value));
            }
            Ok(req)
        }
        _ => bail!(
            "{}: expected an object {{\"Label\": value}} or an array of {{\"label\", \"value\"}}",
            path.display()
        ),
    }
}

fn extract_file(
    path: &Path,
    schema: Option<&Path>,
    table: Option<&str>,
    format: Format,
    out: Option<&Path>,
    max_pages: usize,
) -> anyhow::Result<()> {
    let (records, columns) = match (schema, table) {
        (Some(s), _) => {
            let sc = Schema::from_file(s)?;
            let mut all = Vec::new();
            let mut current = path.to_path_buf();
            for _ in 0..max_pages.max(1) {
                let html = std::fs::read_to_string(&current)
                    .with_context(|| format!("reading {}", current.display()))?;
                let pg = sc
                    .extract(&html, None)
                    .with_context(|| format!("extracting {}", current.display()))?;
                all.extend(pg.records);
                // Follow `next` to a sibling saved file when it exists.
                match pg.next.map(|n| {
                    current
                        .parent()
                        .unwrap_or(Path::new("."))
                        .join(n.split(['?', '#']).next().unwrap_or(""))
                }) {
                    Some(next) if next.is_file() && next != current => current = next,
                    _ => break,
                }
            }
            (all, Some(sc.field_names()))
        }
        (None, Some(css)) => {
            let html = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            (
                extract::extract_table(&html, Some(css).filter(|c| !c.is_empty()))?,
                None,
            )
        }
        (None, None) => bail!("give --schema FILE or --table"),
    };
    emit(&records, format, columns.as_deref(), out)
}

fn emit(
    records: &[extract::Record],
    format: Format,
    columns: Option<&[String]>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    match out {
        Some(p) => {
            let mut buf = Vec::new();
            extract::write_records(&mut buf, records, format, columns)?;
            atomic_write(p, &buf).with_context(|| format!("writing {}", p.display()))?;
            errln!("{} records → {}", records.len(), p.display());
        }
        None => {
            // Page text: escaped for the terminal (`--out FILE` keeps the exact bytes).
            let mut buf = Vec::new();
            extract::write_records(&mut buf, records, format, columns)?;
            let text = String::from_utf8_lossy(&buf);
            crate::cli::safe_text::write_data(&text, !matches!(format, Format::Csv))?;
        }
    }
    Ok(())
}

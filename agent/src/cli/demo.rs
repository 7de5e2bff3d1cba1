//! `deskhand demo`: the main job on the embedded default, no server needed. Serves the bundled
//! fixture site on loopback, fills its 20-field sign-up form and checks what the site received,
//! then extracts the three-page product listing; results land in `<workspace>/reports/`.

use std::path::Path;

use anyhow::{ensure, Context};
use clap::Args;
use deskhand_browser::extract::{self, Format, Schema};
use deskhand_browser::{Browser, Shot, Submit};
use indicatif::{ProgressBar, ProgressStyle};

use super::BrowserArgs;
use crate::config::Config;
use crate::output::atomic_write;
use crate::site::{fixture_dir, StaticSite};

/// `deskhand demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    browser: BrowserArgs,
}

/// Run the demo.
pub async fn run(args: DemoArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let opts = args.browser.launch_options(workspace, config)?;
    let fixtures = fixture_dir();
    let site = StaticSite::serve(&fixtures)
        .await
        .with_context(|| format!("serving the demo site from {}", fixtures.display()))?;
    let reports = workspace.join("reports");
    let bar = progress(5);

    bar.set_message(format!("starting Chromium ({})", opts.backend));
    let browser = Browser::launch(opts).await?;
    let page = browser.new_page().await?;
    bar.inc(1);

    bar.set_message("filling the sign-up form");
    page.goto(&site.url("signup.html")).await?;
    let mut req = super::browse::load_values(&fixtures.join("signup.values.json"))?;
    let expected_email = req
        .fields
        .iter()
        .find(|(k, _)| k == "Email")
        .and_then(|(_, v)| v.as_str().map(String::from));
    req.submit = Some(Submit::Button("Create account".into()));
    let report = page.fill(&req).await?;
    bar.inc(1);

    bar.set_message("checking what the site received");
    let received = extract::extract_table(&page.html().await?, None).unwrap_or_default();
    let echoed = page.eval("Object.fromEntries([...document.querySelectorAll('#result dd')].map(d => [d.dataset.name, d.textContent]))").await?;
    ensure!(
        report.submit.as_ref().is_some_and(|s| s.navigated)
            && echoed["email"].as_str() == expected_email.as_deref(),
        "the site did not receive the form: got {echoed}"
    );
    let _ = received;
    let png = page.screenshot(&Shot::FullPage).await?;
    atomic_write(&reports.join("demo-signup.png"), &png)?;
    atomic_write(
        &reports.join("demo-signup.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    bar.inc(1);

    bar.set_message("extracting the product listing");
    let schema = Schema::from_file(&fixtures.join("products/schema.yaml"))?;
    page.goto(&site.url("products/page-1.html")).await?;
    let (records, pages) = page.extract_pages(&schema, 10).await?;
    let mut csv = Vec::new();
    extract::write_records(&mut csv, &records, Format::Csv, Some(&schema.field_names()))?;
    atomic_write(&reports.join("demo-products.csv"), &csv)?;
    bar.inc(1);

    page.close().await?;
    browser.close().await?;
    bar.inc(1);
    bar.finish_and_clear();

    println!("Deskhand demo — site served at {}", site.url(""));
    println!(
        "  sign-up form: {} fields filled in {} ms ({} round trip), submitted → {}",
        report.fields.len(),
        report.elapsed_ms,
        report.attempts,
        report.url.split('?').next().unwrap_or_default()
    );
    println!("  products: {} records from {} pages", records.len(), pages);
    println!(
        "  wrote {}/demo-signup.json, demo-signup.png, demo-products.csv",
        reports.display()
    );
    Ok(())
}

fn progress(steps: u64) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

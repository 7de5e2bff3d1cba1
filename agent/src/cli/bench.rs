//! `deskhand bench …`: the Deskhand side of the benchmarks in `bench/` (run.sh compares them with
//! Playwright, BeautifulSoup and selectolax on the same machine). Each prints one JSON line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context};
use clap::{Args, Subcommand};
use deskhand_browser::extract::{extract_files, Schema};
use deskhand_browser::{Browser, Submit};

use super::BrowserArgs;
use crate::config::Config;

/// `deskhand bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Fill and submit a form N times.
    Fill {
        /// The form page.
        #[arg(long)]
        url: String,
        /// Values file (as for `browse fill --values`).
        #[arg(long)]
        values: PathBuf,
        /// Submit button text.
        #[arg(long, default_value = "Create account")]
        submit: String,
        /// Forms to fill (after 5 warm-up rounds).
        #[arg(long, default_value_t = 200)]
        n: usize,
        #[command(flatten)]
        browser: BrowserArgs,
    },
    /// Extract every *.html file of a folder with a schema, on all cores.
    Extract {
        /// Folder of saved pages.
        #[arg(long)]
        dir: PathBuf,
        /// Schema file.
        #[arg(long)]
        schema: PathBuf,
    },
}

/// Run a benchmark.
pub async fn run(args: BenchArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Fill {
            url,
            values,
            submit,
            n,
            browser,
        } => {
            let opts = browser.launch_options(workspace, config)?;
            let backend = opts.backend;
            let b = Browser::launch(opts).await?;
            let page = b.new_page().await?;
            let mut req = super::browse::load_values(&values)?;
            req.submit = Some(Submit::Button(submit));
            let mut times = Vec::with_capacity(n);
            let (mut goto_ms, mut fill_ms) = (0.0, 0.0);
            for i in 0..n + 5 {
                let t = Instant::now();
                page.goto(&url).await?;
                let g = t.elapsed().as_secs_f64() * 1000.0;
                let report = page.fill(&req).await?;
                if i >= 5 {
                    goto_ms += g;
                    fill_ms += report.elapsed_ms as f64;
                }
                ensure!(
                    report.submit.as_ref().is_some_and(|s| s.navigated),
                    "form {i} did not submit"
                );
                if i >= 5 {
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            ensure!(
                page.count("#result").await? == 1,
                "the last submission did not reach the result page"
            );
            page.close().await?;
            b.close().await?;
            let total: f64 = times.iter().sum();
            times.sort_by(f64::total_cmp);
            let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
            println!(
                "{}",
                serde_json::json!({"tool": format!("deskhand-{backend}"), "forms": n, "ms_per_form": total / n as f64,
                    "p50_ms": pct(0.5), "p99_ms": pct(0.99), "goto_ms": goto_ms / n as f64, "fill_submit_ms": fill_ms / n as f64})
            );
        }
        BenchCommand::Extract { dir, schema } => {
            let sc = Schema::from_file(&schema)?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "html"))
                .collect();
            files.sort();
            ensure!(!files.is_empty(), "no .html files in {}", dir.display());
            let t = Instant::now();
            let (results, stats) = extract_files(&files, &sc);
            let secs = t.elapsed().as_secs_f64();
            if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
                anyhow::bail!("extraction failed: {e}");
            }
            println!(
                "{}",
                serde_json::json!({"tool": "deskhand-scraper", "pages": stats.pages, "bytes": stats.bytes, "records": stats.records,
                    "secs": secs, "pages_per_s": stats.pages as f64 / secs, "mb_per_s": stats.bytes as f64 / 1e6 / secs,
                    "threads": rayon::current_num_threads()})
            );
        }
    }
    Ok(())
}

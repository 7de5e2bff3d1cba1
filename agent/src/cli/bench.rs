//! `deskhand bench …`: the Deskhand side of the benchmarks in `bench/` (run.sh compares them with
//! Playwright, BeautifulSoup and selectolax on the same machine). Each prints one JSON line.

use crate::outln;
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
    /// Dispatch-to-start latency and no-op throughput of a queue backend (and, for NATS, the bare
    /// request/reply floor on the same server).
    Dispatch {
        /// `embedded` or `nats://host:port`.
        #[arg(long, default_value = "embedded")]
        queue: String,
        /// Jobs for the latency run (one at a time).
        #[arg(long, default_value_t = 500)]
        n: usize,
        /// Jobs for the throughput run (all at once).
        #[arg(long, default_value_t = 5000)]
        burst: usize,
        /// Agent concurrency for the throughput run.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Dispatch through a hub as the phone page does it: a signed job published over the hub's
    /// WebSocket listener into the agent's stream, timed to its "running" event on the events
    /// subject; beside it, the floor: a bare request/reply phone → hub → desktop → phone.
    Hub {
        /// The hub for the desktop (`nats://127.0.0.1:4222`).
        #[arg(long)]
        queue: String,
        /// Where the phone connects: the hub's WebSocket listener (`ws://127.0.0.1:8080`), or its
        /// client port (`nats://…`) to take the WebSocket client out of the measure (async-nats's
        /// WebSocket client leaves Nagle's algorithm on, which browsers do not).
        #[arg(long)]
        ws: String,
        /// Jobs (one at a time, after 20 warm-up ones).
        #[arg(long, default_value_t = 300)]
        n: usize,
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
            outln!(
                "{}",
                serde_json::json!({"tool": format!("deskhand-{backend}"), "forms": n, "ms_per_form": total / n as f64,
                    "p50_ms": pct(0.5), "p99_ms": pct(0.99), "goto_ms": goto_ms / n as f64, "fill_submit_ms": fill_ms / n as f64})
            )?;
        }
        BenchCommand::Dispatch {
            queue,
            n,
            burst,
            concurrency,
        } => bench_dispatch(&queue, n, burst, concurrency).await?,
        BenchCommand::Hub { queue, ws, n } => bench_hub(&queue, &ws, n).await?,
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
            outln!(
                "{}",
                serde_json::json!({"tool": "deskhand-scraper", "pages": stats.pages, "bytes": stats.bytes, "records": stats.records,
                    "secs": secs, "pages_per_s": stats.pages as f64 / secs, "mb_per_s": stats.bytes as f64 / 1e6 / secs,
                    "threads": rayon::current_num_threads()})
            )?;
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn bench_dispatch(
    queue: &str,
    n: usize,
    burst: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    use crate::agent::{Agent, AgentConfig};
    use crate::job::{Job, JobState};
    let ws = tempfile::tempdir()?;
    let mut cfg = AgentConfig::new(ws.path().to_path_buf());
    cfg.queue = queue.to_string();
    cfg.queue_config.agent = format!("bench{}", std::process::id());
    cfg.concurrency = concurrency;
    let agent = Agent::start(cfg).await?;
    let runner = agent.clone();
    let serving = tokio::spawn(async move { runner.run().await });
    let mut events = agent.subscribe();

    // The floor: a bare async-nats request/reply round trip on the same server, one before each
    // job of the latency run, so both see the same moments of the machine.
    let floor_client = match queue.strip_prefix("nats://") {
        Some(_) => {
            let client = async_nats::connect(queue).await?;
            let mut sub = client.subscribe("deskhand.bench.echo").await?;
            let responder = client.clone();
            let echo = tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    if let Some(r) = m.reply {
                        let _ = responder.publish(r, m.payload).await;
                    }
                }
            });
            client.flush().await?;
            Some((client, echo))
        }
        None => None,
    };
    let mut floor = Vec::with_capacity(n);

    // Latency: one job at a time, from submit() to the agent's "running" transition.
    let mut lat = Vec::with_capacity(n);
    for i in 0..n + 50 {
        if let Some((client, _)) = &floor_client {
            // Let the previous job's ack and state write finish first, so the floor does not
            // queue behind our own traffic (that would flatter the ratio).
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            let t = Instant::now();
            client.request("deskhand.bench.echo", "ping".into()).await?;
            if i >= 50 {
                floor.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let t = Instant::now();
        let id = agent
            .submit(Job::new("noop", Default::default(), "bench"))
            .await?;
        loop {
            let e = events.recv().await?;
            if e.job_id == id && e.state == JobState::Running {
                break;
            }
        }
        if i >= 50 {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        // Let it finish before the next, so each measurement starts from an idle agent.
        loop {
            let e = events.recv().await?;
            if e.job_id == id && e.is_terminal() {
                break;
            }
        }
    }
    lat.sort_by(f64::total_cmp);

    // Throughput: submit a burst (bounded in-flight submits), count jobs to the end.
    let t = Instant::now();
    let mut pending = futures::stream::iter(0..burst)
        .map(|_| {
            let a = agent.clone();
            async move {
                a.submit(Job::new("noop", Default::default(), "bench"))
                    .await
            }
        })
        .buffer_unordered(256);
    use futures::StreamExt;
    let mut submitted = 0;
    let mut done = 0;
    loop {
        tokio::select! {
            s = pending.next(), if submitted < burst => { s.transpose()?; submitted += 1; }
            e = events.recv() => {
                match e {
                    Ok(e) if e.is_terminal() => done += 1,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => anyhow::bail!("event receiver lagged by {k}"),
                    Err(e) => return Err(e.into()),
                }
                if done == burst { break; }
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    agent.shutdown();
    serving.await??;

    let mut out = serde_json::json!({"queue": if queue.starts_with("nats") { "nats" } else { "embedded" },
        "latency_n": n, "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99),
        "burst": burst, "jobs_per_s": burst as f64 / secs});
    if let Some((_, echo)) = floor_client {
        echo.abort();
        floor.sort_by(f64::total_cmp);
        out["floor_p50_ms"] = percentile(&floor, 0.5).into();
        out["floor_p99_ms"] = percentile(&floor, 0.99).into();
        out["p99_vs_floor"] = (percentile(&lat, 0.99) / percentile(&floor, 0.99)).into();
    }
    outln!("{out}")?;
    Ok(())
}

/// Phone page → job running, through a hub (see [`BenchCommand::Hub`]).
async fn bench_hub(queue: &str, ws_url: &str, n: usize) -> anyhow::Result<()> {
    use crate::agent::{Agent, AgentConfig};
    use crate::guard::devices::{DeviceKey, Devices};
    use crate::job::{Job, JobEvent, JobState};
    use futures::StreamExt;
    let ws = tempfile::tempdir()?;
    let mut cfg = AgentConfig::new(ws.path().to_path_buf());
    cfg.queue = queue.to_string();
    cfg.queue_config.agent = format!("benchhub{}", std::process::id());
    let names = crate::queue::nats::Names::for_agent(&cfg.queue_config.agent);
    let (_, secret) = Devices::new(ws.path()).pair("bench phone")?;
    let phone_key = DeviceKey::parse(&secret)?;
    let agent = Agent::start(cfg).await?;
    let runner = agent.clone();
    let serving = tokio::spawn(async move { runner.run().await });

    // The desktop's side of the floor: an echo on its own connection to the hub.
    let desk = async_nats::connect(queue).await?;
    let mut echo_sub = desk.subscribe(format!("{}.benchecho", names.api)).await?;
    let responder = desk.clone();
    let echo = tokio::spawn(async move {
        while let Some(m) = echo_sub.next().await {
            if let Some(r) = m.reply {
                let _ = responder.publish(r, m.payload).await;
                let _ = responder.flush().await;
            }
        }
    });
    desk.flush().await?;
    // The phone: a WebSocket connection, as the page has.
    let phone = async_nats::connect(ws_url).await?;
    let (mut lat, mut floor) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let t = Instant::now();
        phone
            .request(format!("{}.benchecho", names.api), "ping".into())
            .await?;
        let floor_ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut job = Job::new("noop", Default::default(), "bench");
        phone_key.sign(&mut job);
        let id = job.id.to_string();
        let t = Instant::now();
        let mut events = phone.subscribe(format!("{}.{id}", names.events)).await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let ack = phone
            .request_with_headers(names.jobs.clone(), headers, job.to_bytes().into())
            .await?;
        ensure!(
            String::from_utf8_lossy(&ack.payload).contains("\"stream\""),
            "the hub did not take job {i}: {}",
            String::from_utf8_lossy(&ack.payload)
        );
        let mut running = None;
        while let Some(m) = events.next().await {
            let Ok(e) = serde_json::from_slice::<JobEvent>(&m.payload) else {
                continue;
            };
            if running.is_none() && e.state == JobState::Running {
                running = Some(t.elapsed().as_secs_f64() * 1000.0);
            }
            if e.is_terminal() {
                ensure!(
                    e.state == JobState::Succeeded,
                    "job {i} ended {:?}",
                    e.state
                );
                break;
            }
        }
        let ms = running.context("the job never said it was running")?;
        if i >= 20 {
            lat.push(ms);
            floor.push(floor_ms);
        }
    }
    echo.abort();
    agent.shutdown();
    serving.await??;
    lat.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    outln!(
        "{}",
        serde_json::json!({"path": format!("phone ({}) -> hub -> desktop", if ws_url.starts_with("ws") { "WebSocket" } else { "TCP" }), "n": n,
            "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99),
            "floor_p50_ms": percentile(&floor, 0.5), "floor_p99_ms": percentile(&floor, 0.99),
            "p50_vs_floor": percentile(&lat, 0.5) / percentile(&floor, 0.5),
            "p99_vs_floor": percentile(&lat, 0.99) / percentile(&floor, 0.99)})
    )?;
    Ok(())
}

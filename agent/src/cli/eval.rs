//! `deskhand eval SUITE.yaml`: run a suite of tasks against the configured model and print a
//! score table. Exits non-zero when a task fails (the table says which check), so a script or
//! CI can gate on it. The suite format is `crate::eval`'s.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::agent::config::AgentEnv;
use crate::config::Config;
use crate::eval::{Outcome, Runner, Suite};
use crate::outln;

/// `deskhand eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The suite file (YAML), e.g. evals/basic.yaml.
    suite: PathBuf,
    /// Keep each task's temporary workspace (its path is printed) to look at what the job did.
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    browser: super::BrowserArgs,
}

/// Run `deskhand eval`.
pub async fn run(a: EvalArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let suite = Suite::load(&a.suite)?;
    let env = AgentEnv::read();
    // The model, key and budget are the person's own (environment, config, keyring), exactly
    // as for `deskhand ask`; only the workspace is fresh for each task.
    let planner = crate::config::planner_env_with(
        config,
        |k| env.model.get(k).cloned(),
        |p| crate::model_key::read(workspace, config, p),
    )?;
    let Some(model) = &planner.model else {
        anyhow::bail!(
            "no language model is configured to evaluate: set [model] provider and model in {} \
             (or DESKHAND_MODEL_PROVIDER and DESKHAND_MODEL); `deskhand model status` shows what \
             is set",
            Config::path(workspace).display()
        );
    };
    let title = format!(
        "{} — {} {} at {}",
        suite.name.as_deref().unwrap_or("eval"),
        model.provider.as_str(),
        model.model,
        model.base_url
    );
    let price = model.price;
    let mut browser = a.browser.launch_options(workspace, config)?;
    // A fresh profile: an eval must not act in the person's logged-in browser.
    browser.profile = None;
    let runner = Runner {
        planner,
        browser,
        keep: a.keep,
    };
    outln!("{title}")?;
    let mut outcomes = Vec::new();
    for task in &suite.tasks {
        let mut o = runner
            .run_task(task)
            .await
            .with_context(|| format!("running task {:?}", task.name))?;
        if o.spent.cost_usd.is_none() {
            o.spent.cost_usd = price.map(|p| {
                p.cost(deskhand_model::Usage {
                    input_tokens: o.spent.input_tokens,
                    output_tokens: o.spent.output_tokens,
                })
            });
        }
        outcomes.push(o);
    }
    outln!()?;
    for line in table(&outcomes) {
        outln!("{line}")?;
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    for o in outcomes.iter().filter(|o| !o.passed() || o.kept.is_some()) {
        outln!()?;
        outln!("{}:", o.task)?;
        for f in &o.failed {
            outln!("  failed: {f}")?;
        }
        if let (false, Some(e)) = (o.passed(), &o.error) {
            outln!("  job error: {e}")?;
        }
        if let Some(k) = &o.kept {
            outln!("  workspace: {}", k.display())?;
        }
    }
    let (i, out): (u64, u64) = outcomes.iter().fold((0, 0), |(i, o), x| {
        (i + x.spent.input_tokens, o + x.spent.output_tokens)
    });
    let cost: Option<f64> = outcomes.iter().map(|o| o.spent.cost_usd).sum();
    outln!()?;
    outln!(
        "{} of {} tasks passed; {i} input and {out} output tokens{}",
        outcomes.len() - failed,
        outcomes.len(),
        cost.map(|c| format!(", ${c:.4}")).unwrap_or_default()
    )?;
    anyhow::ensure!(failed == 0, "{failed} of {} tasks failed", outcomes.len());
    Ok(())
}

/// The score table: task, pass/fail, turns, tokens, seconds, the first failed check.
fn table(outcomes: &[Outcome]) -> Vec<String> {
    let head = [
        "task",
        "result",
        "turns",
        "tokens in/out",
        "seconds",
        "failed check",
    ];
    let rows: Vec<[String; 6]> = outcomes
        .iter()
        .map(|o| {
            [
                o.task.clone(),
                if o.passed() { "pass" } else { "FAIL" }.to_string(),
                o.spent.turns.to_string(),
                format!("{}/{}", o.spent.input_tokens, o.spent.output_tokens),
                format!("{:.1}", o.elapsed.as_secs_f64()),
                o.failed.first().map(|f| shorten(f, 70)).unwrap_or_default(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i == 5 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(head)];
    out.extend(rows.iter().map(|r| line(r.each_ref().map(String::as_str))));
    out
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

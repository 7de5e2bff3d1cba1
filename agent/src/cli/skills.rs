//! `deskhand skills list|show|run|install|trust` and `deskhand /trigger k=v ...`.

use crate::cli::safe_text::print_json;
use crate::{out, outln};
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use crate::agent::{Agent, AgentConfig};
use crate::config::Config;
use crate::job::Job;
use crate::skills::{install, SkillDef, SkillKind, Skills};

/// `deskhand skills`.
#[derive(Debug, Args)]
pub struct SkillsArgs {
    #[command(subcommand)]
    cmd: SkillsCmd,
}

#[derive(Debug, Subcommand)]
enum SkillsCmd {
    /// List skills (built-in and the workspace's own) and any that failed to load.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one skill: parameters, permissions, steps, and SKILL.md's text.
    Show {
        /// Name or trigger.
        name: String,
        /// Print an action's argument and result JSON Schemas (what a planner is offered).
        #[arg(long)]
        schema: bool,
    },
    /// Run a skill now, in this process, and print where its results are.
    Run {
        /// Name or trigger.
        name: String,
        /// Parameters, `k=v` (JSON values are parsed).
        #[arg(long = "param", short = 'p', value_name = "K=V")]
        params: Vec<String>,
        /// Approve what the job asks for without asking (for scripts; on a terminal you are
        /// shown each request and asked).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        browser: super::BrowserArgs,
    },
    /// Copy a skill or a bundle of skills (a folder, or a git URL with `//subfolder`) into the
    /// workspace, after showing their permissions.
    Install {
        /// Folder or git URL.
        source: String,
        /// Accept the permissions without asking (for scripts; read them first).
        #[arg(long)]
        yes: bool,
        /// Replace skills of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Trust a skill as it is now (any later edit revokes it).
    Trust {
        /// Name.
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// Run `deskhand skills ...`.
pub async fn run(args: SkillsArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let skills = Skills::load(workspace);
    match args.cmd {
        SkillsCmd::List { json } => {
            if json {
                print_json(
                    &serde_json::json!({
                        "skills": skills.list(),
                        "problems": skills.problems(),
                    }),
                    true,
                )?;
                return Ok(());
            }
            for s in skills.list() {
                let kind = match s.kind {
                    SkillKind::Action => "action",
                    SkillKind::Workflow => "skill",
                    SkillKind::PromptOnly => "prompt-only (planned)",
                    SkillKind::Command => "command (planned)",
                };
                outln!(
                    "{:<18} {:<18} {:<10} {}",
                    s.name,
                    s.trigger.as_deref().unwrap_or("-"),
                    kind,
                    first_sentence(&s.description)
                )?;
            }
            if !skills.problems().is_empty() {
                outln!("\nNot loaded:")?;
                for p in skills.problems() {
                    outln!("  {p}")?;
                }
            }
            Ok(())
        }
        SkillsCmd::Show { name, schema } => {
            let s = skills
                .find(&name)
                .with_context(|| format!("no skill {name:?}; `deskhand skills list` shows them"))?;
            if !schema {
                show(s)?;
                return Ok(());
            }
            let uses: Vec<&str> = s.steps.iter().map(|st| st.uses.as_str()).collect();
            let action = (s.kind == crate::skills::SkillKind::Action)
                .then(|| crate::skills::actions::find(&s.name))
                .flatten();
            let a = action.with_context(|| {
                format!(
                    "{} is a skill, not an action; its steps use {}: show those with --schema",
                    s.name,
                    uses.join(", ")
                )
            })?;
            print_json(
                &serde_json::json!({"name": a.name, "description": a.description,
                    "arguments": a.args_schema(), "result": a.output_schema()}),
                true,
            )?;
            Ok(())
        }
        SkillsCmd::Run {
            name,
            params,
            yes,
            browser,
        } => {
            let params = super::jobs::parse_params(&params)?;
            let skill = skills.find(&name).map(|s| s.name.clone()).unwrap_or(name);
            run_now_answering(workspace, config, &browser, &skill, params, yes).await
        }
        SkillsCmd::Install { source, yes, force } => {
            let src = install::fetch(&source)?;
            let found = install::scan(&src.dir)?;
            for f in &found {
                let def = Skills::default();
                let _ = def;
                outln!(
                    "{} — {}",
                    f.manifest.front.name,
                    first_sentence(&f.manifest.front.description)
                )?;
                print_permissions(
                    f.manifest.executable.then_some(&f.manifest.permissions),
                    "  ",
                )?;
            }
            if !confirm(
                yes,
                "Install and trust these skills with these permissions?",
            )? {
                bail!("nothing installed");
            }
            let placed = install::copy_in(workspace, &found, force)?;
            for (f, dest) in found.iter().zip(&placed) {
                install::trust(workspace, &f.manifest.front.name, &f.manifest.hash)?;
                outln!("installed {} → {}", f.manifest.front.name, dest.display())?;
            }
            Ok(())
        }
        SkillsCmd::Trust { name, yes } => {
            let s = skills
                .find(&name)
                .with_context(|| format!("no skill {name:?}; `deskhand skills list` shows them"))?;
            show(s)?;
            if !confirm(yes, &format!("Trust {} with these permissions?", s.name))? {
                bail!("not trusted");
            }
            install::trust(workspace, &s.name, s.hash.as_deref().unwrap_or_default())?;
            outln!("trusted {} (any edit revokes this)", s.name)?;
            Ok(())
        }
    }
}

/// `deskhand /status-report k=v ...`: run a skill by its trigger.
pub async fn trigger(words: Vec<String>, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let text = words
        .iter()
        .map(|w| {
            shlex::try_quote(w)
                .map(|c| c.into_owned())
                .unwrap_or_else(|_| w.clone())
        })
        .collect::<Vec<_>>()
        .join(" ");
    let probe = Job {
        text: Some(text),
        skill: None,
        ..Job::new("x", Map::new(), "cli")
    };
    let (name, params) = probe.resolved();
    let browser = super::BrowserArgs {
        backend: None,
        chrome: None,
        profile: None,
        timeout: None,
        headed: false,
    };
    run_now(workspace, config, &browser, &name, params).await
}

/// `deskhand ask "…"`.
#[derive(Debug, clap::Args)]
pub struct AskArgs {
    /// What to do, in plain words.
    #[arg(required = true, num_args = 1..)]
    words: Vec<String>,
    /// Go on with the conversation of this earlier planned job (its id): a follow-up with its
    /// context, run as a new job.
    #[arg(long = "job", value_name = "ID")]
    continues: Option<String>,
    /// Show the plan for your approval before the first consequential call.
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    browser: super::BrowserArgs,
}

/// `deskhand ask "…"`: a request in plain words, planned by the configured model and run here
/// as a job (the same guard, audit and undo as any job); prints the answer and the outputs.
pub async fn ask(a: AskArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let mut params = Map::new();
    params.insert("request".into(), Value::String(a.words.join(" ")));
    if let Some(prev) = a.continues {
        // Say it now, before a job is made for it.
        crate::guard::read_transcript(workspace, &prev).map_err(|e| anyhow::anyhow!("{e}"))?;
        params.insert("continues".into(), Value::String(prev));
    }
    if a.plan {
        params.insert("plan".into(), Value::Bool(true));
    }
    run_now(
        workspace,
        config,
        &a.browser,
        crate::planner::ACTION,
        params,
    )
    .await
}

/// The model's last answer in a planned job's transcript.
fn last_answer(workspace: &Path, job: &str) -> Option<String> {
    let text = std::fs::read_to_string(
        workspace
            .join(".deskhand/jobs")
            .join(job)
            .join("transcript.jsonl"),
    )
    .ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["role"] == "assistant")
        .map(|e| {
            e["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("")
        })
        .filter(|t| !t.trim().is_empty())
}

async fn run_now(
    workspace: &Path,
    config: &Config,
    browser: &super::BrowserArgs,
    skill: &str,
    params: Map<String, Value>,
) -> anyhow::Result<()> {
    run_now_answering(workspace, config, browser, skill, params, false).await
}

/// Answer the approvals `job` asks for while it runs here: all of them with `--yes`; on a
/// terminal, each shown whole and asked; otherwise say once how to answer them elsewhere.
fn answer_here(
    store: crate::store::Store,
    job: String,
    yes: bool,
    bar: indicatif::ProgressBar,
) -> tokio::task::JoinHandle<()> {
    use std::io::IsTerminal;
    tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        loop {
            let pending = crate::guard::approvals::list(&store, false)
                .await
                .unwrap_or_default();
            for a in pending.into_iter().filter(|a| a.job == job) {
                if !seen.insert(a.id.clone()) {
                    continue;
                }
                let ok = if yes {
                    bar.suspend(|| crate::errln!("approved (--yes): {} on {}", a.action, a.target));
                    true
                } else if std::io::stdin().is_terminal() {
                    let shown = serde_json::to_string_pretty(&a.preview).unwrap_or_default();
                    let lines: Vec<&str> = shown.lines().collect();
                    let text = if lines.len() > 60 {
                        format!(
                            "{}\n  … {} more lines",
                            lines[..60].join("\n"),
                            lines.len() - 60
                        )
                    } else {
                        shown.clone()
                    };
                    let question = format!(
                        "{} asks to {} on {}:\n{text}\nApprove? [y/N] ",
                        a.skill, a.action, a.target
                    );
                    // The spinner stays hidden while the person reads and answers.
                    let bar = bar.clone();
                    tokio::task::spawn_blocking(move || {
                        bar.suspend(|| {
                            crate::cli::safe_text::write_err(format_args!("{question}"));
                            let mut line = String::new();
                            std::io::stdin().read_line(&mut line).ok();
                            matches!(line.trim(), "y" | "Y" | "yes")
                        })
                    })
                    .await
                    .unwrap_or(false)
                } else {
                    bar.suspend(|| {
                        crate::errln!(
                            "waiting for your approval of {} on {}: deskhand approvals approve {} (or run with --yes)",
                            a.action, a.target, a.id
                        )
                    });
                    continue;
                };
                let _ = crate::guard::approvals::decide(&store, &a.id, ok, "cli").await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        }
    })
}

async fn run_now_answering(
    workspace: &Path,
    config: &Config,
    browser: &super::BrowserArgs,
    skill: &str,
    params: Map<String, Value>,
    yes: bool,
) -> anyhow::Result<()> {
    let cfg = AgentConfig::for_run_now(
        workspace,
        config,
        browser.launch_options(workspace, config)?,
    )?;
    let agent = Agent::start(cfg).await?;
    let job = Job::new(skill, params, super::jobs::device_id());
    let bar = spinner(&format!("running {skill}"));
    let answering = answer_here(agent.store().clone(), job.id.to_string(), yes, bar.clone());
    // A planned job's words and tool calls, as they come (on a terminal).
    let narrate = crate::cli::safe_text::stderr_is_terminal().then(|| {
        let mut events = agent.subscribe();
        let mut narrator = super::narrate::Narrator::new(bar.clone());
        let id = job.id.to_string();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ev) if ev.job_id == id => {
                        narrator.event(&ev);
                        if ev.is_terminal() {
                            break;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
            narrator.flush();
            narrator.said
        })
    });
    let rec = agent.run_now(job).await;
    answering.abort();
    let rec = rec?;
    let said = match narrate {
        // The end was sent before run_now returned; the wait only guards against a lost event.
        Some(task) => tokio::time::timeout(std::time::Duration::from_secs(2), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false),
        None => false,
    };
    bar.finish_and_clear();
    match rec.state {
        crate::job::JobState::Succeeded => {
            // Printed already when the answer streamed to this terminal.
            let streamed = said && crate::cli::safe_text::stdout_is_terminal();
            if let Some(answer) = last_answer(workspace, &rec.id).filter(|_| !streamed) {
                outln!("{}", answer.trim())?;
            }
            outln!("{} {} succeeded", rec.skill, rec.id)?;
            if let Some(spent) = crate::transcript::spent(workspace, &rec.id) {
                outln!("  {}", spent.summary())?;
            }
            for o in &rec.outputs {
                outln!("  {}", workspace.join(o).display())?;
            }
            outln!(
                "  dashboard: {}",
                workspace.join("dashboard.html").display()
            )?;
            Ok(())
        }
        crate::job::JobState::Held => bail!(
            "{} is held: {} — fix it (e.g. `deskhand connect google`), then run it again",
            rec.skill,
            rec.error.unwrap_or_default()
        ),
        other => bail!(
            "{} {}: {}",
            rec.skill,
            other.as_str(),
            rec.error.unwrap_or_default()
        ),
    }
}

fn show(s: &SkillDef) -> std::io::Result<()> {
    outln!("{}  ({})", s.name, s.source)?;
    outln!("  {}", s.description)?;
    if let Some(t) = &s.trigger {
        outln!("  trigger: {t}")?;
    }
    if let Some(c) = &s.schedule {
        outln!("  suggested schedule: {c}")?;
    }
    if !s.params.is_empty() {
        outln!("  parameters:")?;
        for p in &s.params {
            outln!(
                "    {:<12} {:<6} {}{}{}",
                p.name,
                serde_json::to_value(p.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                if p.required { "(required) " } else { "" },
                p.description,
                p.default
                    .as_ref()
                    .map(|d| format!(" [default {d}]"))
                    .unwrap_or_default()
            )?;
        }
    }
    print_permissions(s.permissions.as_ref(), "  ")?;
    if !s.steps.is_empty() {
        outln!("  steps:")?;
        for st in &s.steps {
            outln!(
                "    {:<10} uses {}{}{}",
                st.id,
                st.uses,
                if st.needs.is_empty() {
                    String::new()
                } else {
                    format!(" after {}", st.needs.join(", "))
                },
                st.path
                    .as_ref()
                    .map(|p| format!(" → {p}"))
                    .unwrap_or_default()
            )?;
        }
    }
    if !s.body.trim().is_empty() {
        outln!("\n{}", s.body.trim())?;
    }
    Ok(())
}

fn print_permissions(
    p: Option<&crate::skills::manifest::Permissions>,
    indent: &str,
) -> std::io::Result<()> {
    let Some(p) = p else {
        outln!("{indent}permissions: the planner's (prompt-only: [planner.permissions])")?;
        return Ok(());
    };
    outln!("{indent}permissions:")?;
    let none = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    outln!(
        "{indent}  connectors: {}",
        if p.connectors.is_empty() {
            "none".to_string()
        } else {
            p.connectors
                .iter()
                .map(|(k, a)| {
                    format!(
                        "{k} ({})",
                        if *a == crate::skills::manifest::Access::Write {
                            "read+write"
                        } else {
                            "read"
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    )?;
    outln!("{indent}  browser origins: {}", none(&p.browser))?;
    outln!("{indent}  workspace paths: {}", none(&p.workspace))?;
    outln!("{indent}  files it may read: {}", none(&p.read))?;
    outln!("{indent}  without asking: {}", none(&p.without_asking))?;
    Ok(())
}

fn confirm(yes: bool, question: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} — not a terminal; read the permissions above and pass --yes to accept");
    }
    out!("{question} [y/N] ")?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// A spinner on a terminal; hidden otherwise.
pub(crate) fn spinner(msg: &str) -> indicatif::ProgressBar {
    if !crate::cli::safe_text::stderr_is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(crate::cli::safe_text::terminal_safe(msg).into_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

fn first_sentence(s: &str) -> &str {
    match s.find(". ") {
        Some(i) => &s[..=i],
        None => s,
    }
}

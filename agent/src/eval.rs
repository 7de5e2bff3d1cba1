//! `deskhand eval SUITE.yaml` (issue 16): score the configured model. A suite is a list of tasks
//! ([`Suite`], [`Task`]); each runs as a real planned job (`agent.ask`, through the guard, with
//! the person's `[model]` and `[planner]` budget) in a fresh temporary workspace holding only
//! the task's files, and its [`Check`]s are then run on what the job left behind: files, the
//! answer, the approvals it asked for, its state. [`run_task`] gives an [`Outcome`] per task; the
//! command prints them as a score table.
//!
//! ```
//! let suite = deskhand_agent::eval::Suite::parse(
//!     "tasks:\n- name: remember\n  request: Remember that Grace prefers mail.\n  checks:\n  \
//!      - state: succeeded\n  - file_contains: {path: MEMORY.md, text: Grace}\n",
//!     std::path::Path::new("."),
//! )
//! .unwrap();
//! assert_eq!(suite.tasks[0].checks.len(), 2);
//! ```

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::agent::{Agent, AgentConfig};
use crate::guard::approvals::QUESTION;
use crate::guard::{Permissions, PlannerEnv};
use crate::job::{Job, JobState};

/// A suite of tasks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// A title for the table.
    #[serde(default)]
    pub name: Option<String>,
    /// The tasks, run one after the other.
    pub tasks: Vec<Task>,
}

/// One task: a request in plain words, the workspace it starts from, and the checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Its name in the table (unique in the suite).
    pub name: String,
    /// What the person asks; `{site}` stands for the base URL of `site`.
    pub request: String,
    /// Files to put in the fresh workspace first: relative path → text.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// A folder (relative to the suite file) served on a loopback port while the task runs, for
    /// tasks about web pages; its URL replaces `{site}` in the request.
    #[serde(default)]
    pub site: Option<PathBuf>,
    /// What the job may touch, as `[planner.permissions]` (default: the configured ones).
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// How the approvals the job asks for are answered (nobody is there to decide).
    #[serde(default)]
    pub approvals: Answer,
    /// The person's answer to any question the model asks (`ask_person`); without one, the
    /// question is declined.
    #[serde(default)]
    pub answer: Option<String>,
    /// What must be true afterwards.
    pub checks: Vec<Check>,
}

/// The answer an eval gives every approval a job asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// Refuse (the default: an eval must not send mail or submit forms).
    #[default]
    Refuse,
    /// Approve.
    Approve,
}

/// A check on a finished task. In YAML each is a one-key map: `{file_exists: reports/*.md}`.
/// Paths are globs (`*` does not cross `/`, `**` does) over the workspace's files, `.deskhand/`
/// excluded; a check on a glob passes when one matching file meets it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The job ended in this state (`succeeded`, `failed`, `cancelled`, `held`).
    State(JobState),
    /// A file exists.
    FileExists(String),
    /// A file contains this text.
    FileContains {
        /// The file (a glob).
        path: String,
        /// The text.
        text: String,
    },
    /// A file's text matches this regular expression (Rust `regex` syntax; `(?i)` for any case).
    FileMatches {
        /// The file (a glob).
        path: String,
        /// The expression.
        regex: String,
    },
    /// A CSV or XLSX file (its first sheet) has this many rows below its header.
    Rows {
        /// The file (a glob).
        path: String,
        /// Data rows.
        count: usize,
    },
    /// The model's last answer contains this text (any case).
    AnswerContains(String),
    /// The job asked for an approval (`asked`) or did not (`none`); questions do not count.
    Approval(Asked),
    /// The model asked the person a question (`asked`, with `ask_person`) or did not (`none`).
    Question(Asked),
}

/// Whether an approval was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Asked {
    /// None was asked.
    None,
    /// At least one was asked.
    Asked,
}

/// A suite that cannot be used, or a task that could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The suite file is not a valid suite.
    #[error("invalid suite {path}: {message}")]
    Suite {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The task's workspace or site could not be set up.
    #[error("task {task}: {message}")]
    Setup {
        /// The task.
        task: String,
        /// What failed.
        message: String,
    },
    /// The agent could not start or record the job.
    #[error("task {task}: {source}")]
    Agent {
        /// The task.
        task: String,
        /// Why.
        source: crate::agent::AgentError,
    },
}

impl Suite {
    /// Read and check a suite file.
    pub fn load(path: &Path) -> Result<Suite, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::Suite {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Suite::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(|message| {
            EvalError::Suite {
                path: path.to_path_buf(),
                message,
            }
        })
    }

    /// Parse and check suite text; `dir` is where `site` folders are found.
    pub fn parse(text: &str, dir: &Path) -> Result<Suite, String> {
        // Through a JSON value, so checks read as one-key maps (`{rows: …}`) rather than as
        // serde_norway's YAML tags (`!rows …`); each task is read alone to name it in errors.
        let value: Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let name = match value.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("name should be text, not {other}")),
        };
        if let Some(k) = value
            .as_object()
            .and_then(|o| o.keys().find(|k| !matches!(k.as_str(), "name" | "tasks")))
        {
            return Err(format!("unknown key {k:?}; a suite has name and tasks"));
        }
        let Some(Value::Array(raw)) = value.get("tasks") else {
            return Err("expected `tasks:`, a list of tasks".into());
        };
        let mut tasks: Vec<Task> = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            let label = t["name"]
                .as_str()
                .map_or_else(|| format!("task {}", i + 1), |n| format!("task {n:?}"));
            let mut task: Task =
                serde_json::from_value(t.clone()).map_err(|e| format!("{label}: {e}"))?;
            task.check(dir).map_err(|e| format!("{label}: {e}"))?;
            if tasks.iter().any(|o| o.name == task.name) {
                return Err(format!("{label}: two tasks have this name"));
            }
            if let Some(s) = &task.site {
                task.site = Some(dir.join(s));
            }
            tasks.push(task);
        }
        if tasks.is_empty() {
            return Err("the suite has no tasks".into());
        }
        Ok(Suite { name, tasks })
    }
}

impl Task {
    /// Everything that can be wrong before running: file paths, globs, regexes, the site.
    fn check(&self, dir: &Path) -> Result<(), String> {
        if self.name.trim().is_empty() || self.request.trim().is_empty() {
            return Err("name and request must not be empty".into());
        }
        if self.checks.is_empty() {
            return Err("no checks: a task without checks cannot fail".into());
        }
        for p in self.files.keys() {
            safe_relative(p).map_err(|e| format!("files: {p:?} {e}"))?;
        }
        match (&self.site, self.request.contains("{site}")) {
            (Some(s), _) if !dir.join(s).is_dir() => {
                return Err(format!("site: {} is not a folder", dir.join(s).display()))
            }
            (None, true) => {
                return Err("the request names {site} but the task has no site folder".into())
            }
            _ => {}
        }
        for c in &self.checks {
            match c {
                Check::FileExists(p)
                | Check::FileContains { path: p, .. }
                | Check::Rows { path: p, .. } => {
                    glob(p)?;
                }
                Check::FileMatches { path, regex } => {
                    glob(path)?;
                    regex::Regex::new(regex).map_err(|e| format!("file_matches {regex:?}: {e}"))?;
                }
                Check::State(_)
                | Check::AnswerContains(_)
                | Check::Approval(_)
                | Check::Question(_) => {}
            }
        }
        Ok(())
    }
}

/// A setup file's path must stay inside the workspace and out of `.deskhand/`.
fn safe_relative(p: &str) -> Result<(), &'static str> {
    let path = Path::new(p);
    let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
    if p.is_empty() || !normal {
        return Err("must be a relative path without `..`");
    }
    if path
        .components()
        .next()
        .is_some_and(|c| c.as_os_str().eq_ignore_ascii_case(".deskhand"))
    {
        return Err("is inside .deskhand/, the agent's own state");
    }
    Ok(())
}

fn glob(p: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(p)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("path {p:?}: {e}"))
}

/// How one task went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The task's name.
    pub task: String,
    /// How the job ended.
    pub state: JobState,
    /// The job's error, if it failed.
    pub error: Option<String>,
    /// The checks that failed, each saying what was expected and what was found.
    pub failed: Vec<String>,
    /// What the job spent.
    pub spent: crate::transcript::Spent,
    /// Wall time.
    pub elapsed: Duration,
    /// The task's workspace, when kept.
    pub kept: Option<PathBuf>,
}

impl Outcome {
    /// Every check passed.
    pub fn passed(&self) -> bool {
        self.failed.is_empty()
    }
}

/// How tasks are run: the person's model and budget, and their browser settings.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The model, budget and default permissions.
    pub planner: PlannerEnv,
    /// Browser settings for tasks that open pages.
    pub browser: deskhand_browser::LaunchOptions,
    /// Keep each task's workspace instead of deleting it.
    pub keep: bool,
}

impl Runner {
    /// Run one task in a fresh workspace and check what it left.
    pub async fn run_task(&self, task: &Task) -> Result<Outcome, EvalError> {
        let setup = |message: String| EvalError::Setup {
            task: task.name.clone(),
            message,
        };
        let dir = tempfile::Builder::new()
            .prefix("deskhand-eval-")
            .tempdir()
            .map_err(|e| setup(format!("creating a temporary workspace: {e}")))?;
        let ws = dir.path().to_path_buf();
        for (rel, text) in &task.files {
            let p = ws.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| setup(format!("{rel}: {e}")))?;
            }
            std::fs::write(&p, text).map_err(|e| setup(format!("{rel}: {e}")))?;
        }
        let site = match &task.site {
            Some(folder) => Some(
                crate::site::StaticSite::serve(folder)
                    .await
                    .map_err(|e| setup(format!("serving {}: {e}", folder.display())))?,
            ),
            None => None,
        };
        let request = match &site {
            Some(s) => task
                .request
                .replace("{site}", s.url("").trim_end_matches('/')),
            None => task.request.clone(),
        };

        let mut cfg = AgentConfig::new(ws.clone());
        cfg.keep_awake = false;
        cfg.browser = self.browser.clone();
        cfg.planner = self.planner.clone();
        // Showing the plan is for a person watching; here it would only be one more approval.
        cfg.planner.show_plan = false;
        if let Some(p) = &task.permissions {
            cfg.planner.permissions = p.clone();
        }
        let agent_err = |source| EvalError::Agent {
            task: task.name.clone(),
            source,
        };
        let agent = Agent::start(cfg).await.map_err(agent_err)?;
        let answering = tokio::spawn(answer_approvals(
            agent.store().clone(),
            task.approvals,
            task.answer.clone(),
        ));
        let mut params = Map::new();
        params.insert("request".into(), Value::String(request));
        let start = Instant::now();
        let ran = agent
            .run_now(Job::new(crate::planner::ACTION, params, "eval"))
            .await;
        let elapsed = start.elapsed();
        answering.abort();
        agent.close_browsers().await;
        let rec = ran.map_err(agent_err)?;
        let asked: Vec<_> = crate::guard::approvals::list(agent.store(), true)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.job == rec.id)
            .collect();
        let questions = asked.iter().filter(|a| a.action == QUESTION).count();
        let spent = crate::transcript::spent(&ws, &rec.id).unwrap_or_default();
        let found = Found {
            ws: &ws,
            state: rec.state,
            error: rec.error.as_deref(),
            answer: spent.answer.as_deref().unwrap_or(""),
            approvals: asked.len() - questions,
            questions,
        };
        let failed = task.checks.iter().filter_map(|c| found.check(c)).collect();
        let kept = self.keep.then(|| dir.keep());
        Ok(Outcome {
            task: task.name.clone(),
            state: rec.state,
            error: rec.error,
            failed,
            spent,
            elapsed,
            kept,
        })
    }
}

/// Answer every approval and question as the task says, as soon as it is asked (nobody else
/// will).
async fn answer_approvals(store: crate::store::Store, approvals: Answer, words: Option<String>) {
    use crate::guard::approvals::{answer, decide, list};
    loop {
        for a in list(&store, false).await.unwrap_or_default() {
            // Already decided (it expired, or the job was cancelled) is fine.
            let _ = match (&words, a.action == QUESTION) {
                (Some(w), true) => answer(&store, &a.id, w, "eval").await,
                (None, true) => decide(&store, &a.id, false, "eval").await,
                (_, false) => decide(&store, &a.id, approvals == Answer::Approve, "eval").await,
            };
        }
        // The guard itself polls the store at this pace while it waits.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a finished task left behind.
struct Found<'a> {
    ws: &'a Path,
    state: JobState,
    error: Option<&'a str>,
    answer: &'a str,
    approvals: usize,
    questions: usize,
}

impl Found<'_> {
    /// `None` when `c` holds, else what was expected and what was found.
    fn check(&self, c: &Check) -> Option<String> {
        match c {
            Check::State(want) => (*want != self.state).then(|| {
                format!(
                    "state: expected {}, was {}{}",
                    want.as_str(),
                    self.state.as_str(),
                    self.error.map(|e| format!(" ({e})")).unwrap_or_default()
                )
            }),
            Check::FileExists(p) => self
                .files(p)
                .is_empty()
                .then(|| format!("file_exists {p}: no such file")),
            Check::FileContains { path, text } => self.any_file(path, |_, t| {
                t.contains(text.as_str())
                    .then_some(())
                    .ok_or_else(|| format!("{text:?} is not in it"))
            }),
            Check::FileMatches { path, regex } => {
                let re = match regex::Regex::new(regex) {
                    Ok(re) => re,
                    Err(e) => return Some(format!("file_matches {regex:?}: {e}")),
                };
                self.any_file(path, |_, t| {
                    re.is_match(t)
                        .then_some(())
                        .ok_or_else(|| format!("/{regex}/ does not match it"))
                })
            }
            Check::Rows { path, count } => self.any_file(path, |abs, _| match rows(abs) {
                Ok(n) if n == *count => Ok(()),
                Ok(n) => Err(format!("expected {count} rows, found {n}")),
                Err(e) => Err(e),
            }),
            Check::AnswerContains(t) => (!self.answer.to_lowercase().contains(&t.to_lowercase()))
                .then(|| {
                    format!(
                        "answer_contains {t:?}: the answer was {:?}",
                        shorten(self.answer, 120)
                    )
                }),
            Check::Approval(Asked::None) => (self.approvals > 0)
                .then(|| format!("approval: expected none, {} asked", self.approvals)),
            Check::Approval(Asked::Asked) => {
                (self.approvals == 0).then(|| "approval: expected one, none asked".to_string())
            }
            Check::Question(Asked::None) => (self.questions > 0)
                .then(|| format!("question: expected none, {} asked", self.questions)),
            Check::Question(Asked::Asked) => {
                (self.questions == 0).then(|| "question: expected one, none asked".to_string())
            }
        }
    }

    /// `None` when one file matching `pattern` passes `test`; else why none did.
    fn any_file(
        &self,
        pattern: &str,
        test: impl Fn(&Path, &str) -> Result<(), String>,
    ) -> Option<String> {
        let files = self.files(pattern);
        if files.is_empty() {
            return Some(format!("{pattern}: no such file"));
        }
        let mut why = Vec::new();
        for rel in &files {
            let abs = self.ws.join(rel);
            let text = std::fs::read(&abs)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            match test(&abs, &text) {
                Ok(()) => return None,
                Err(e) => why.push(format!("{rel}: {e}")),
            }
        }
        Some(why.join("; "))
    }

    /// The workspace files (relative, `/`-separated, `.deskhand/` left out) matching `pattern`.
    fn files(&self, pattern: &str) -> Vec<String> {
        let Ok(m) = glob(pattern) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut dirs = vec![self.ws.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                let Ok(rel) = p.strip_prefix(self.ws) else {
                    continue;
                };
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel == ".deskhand" {
                    continue;
                }
                match e.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(p),
                    Ok(t) if t.is_file() && m.is_match(&rel) => out.push(rel),
                    _ => {}
                }
            }
        }
        out.sort();
        out
    }
}

/// Rows below the header of a CSV file, or of an XLSX file's first sheet.
fn rows(path: &Path) -> Result<usize, String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => {
            let mut r = csv::ReaderBuilder::new()
                .flexible(true)
                .from_path(path)
                .map_err(|e| e.to_string())?;
            let mut n = 0;
            for rec in r.records() {
                rec.map_err(|e| format!("not valid CSV: {e}"))?;
                n += 1;
            }
            Ok(n)
        }
        "xlsx" => {
            use calamine::Reader as _;
            let mut book: calamine::Xlsx<_> =
                calamine::open_workbook(path).map_err(|e| format!("not a valid XLSX: {e}"))?;
            let range = book
                .worksheet_range_at(0)
                .ok_or("the workbook has no sheet")?
                .map_err(|e| format!("not a valid XLSX: {e}"))?;
            Ok(range.height().saturating_sub(1))
        }
        other => Err(format!(
            "rows are counted in .csv and .xlsx files, not .{other}"
        )),
    }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r#"
name: t
tasks:
  - name: report
    request: write the report
    files:
      notes/a.md: "hello"
    checks:
      - state: succeeded
      - file_exists: reports/*.md
      - file_contains: {path: notes/a.md, text: hello}
      - file_matches: {path: "notes/**", regex: "(?i)HEL+O"}
      - rows: {path: reports/*.csv, count: 2}
      - answer_contains: DONE
      - approval: none
"#;

    #[test]
    fn a_suite_reads_with_one_key_checks_and_bad_ones_are_named() {
        let s = Suite::parse(SUITE, Path::new(".")).unwrap();
        assert_eq!(s.name.as_deref(), Some("t"));
        assert_eq!(s.tasks[0].checks[0], Check::State(JobState::Succeeded));
        assert_eq!(s.tasks[0].approvals, Answer::Refuse);
        let bad = |from: &str, to: &str| Suite::parse(&SUITE.replace(from, to), Path::new("."));
        assert!(bad("file_exists", "file_there")
            .unwrap_err()
            .contains("task \"report\""));
        assert!(bad("notes/a.md: \"hello\"", "../x: \"\"")
            .unwrap_err()
            .contains("without `..`"));
        assert!(bad("notes/a.md: \"hello\"", ".deskhand/agent.key: \"\"")
            .unwrap_err()
            .contains(".deskhand"));
        assert!(bad("HEL+O", "(").unwrap_err().contains("file_matches"));
        assert!(bad("succeeded", "finished").is_err());
        assert!(bad("write the report", "open {site}/x.html")
            .unwrap_err()
            .contains("no site folder"));
        assert!(Suite::parse("tasks: []", Path::new("."))
            .unwrap_err()
            .contains("no tasks"));
        assert!(Suite::parse(
            "tasks:\n- name: a\n  request: b\n  checks: []\n",
            Path::new(".")
        )
        .unwrap_err()
        .contains("cannot fail"));
    }

    #[test]
    fn checks_report_what_they_expected_and_found() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path();
        std::fs::create_dir_all(ws.join("reports")).unwrap();
        std::fs::create_dir_all(ws.join(".deskhand")).unwrap();
        std::fs::write(ws.join("reports/a.csv"), "x,y\n1,2\n3,4\n").unwrap();
        std::fs::write(ws.join("reports/b.md"), "# Hello\n").unwrap();
        std::fs::write(ws.join(".deskhand/secret.md"), "hidden").unwrap();
        let found = Found {
            ws,
            state: JobState::Failed,
            error: Some("boom"),
            answer: "All DONE.",
            approvals: 1,
            questions: 0,
        };
        let s = Suite::parse(SUITE, Path::new(".")).unwrap();
        let failed: Vec<_> = s.tasks[0]
            .checks
            .iter()
            .filter_map(|c| found.check(c))
            .collect();
        assert_eq!(
            failed,
            [
                "state: expected succeeded, was failed (boom)",
                "notes/a.md: no such file",
                "notes/**: no such file",
                "approval: expected none, 1 asked",
            ]
        );
        let rows3 = Check::Rows {
            path: "reports/*.csv".into(),
            count: 3,
        };
        assert_eq!(
            found.check(&rows3).unwrap(),
            "reports/a.csv: expected 3 rows, found 2"
        );
        assert!(found.files("**/*.md") == ["reports/b.md"], "not .deskhand/");
        assert_eq!(
            found.check(&Check::Question(Asked::Asked)).unwrap(),
            "question: expected one, none asked"
        );
        assert!(found
            .check(&Check::AnswerContains("nothing".into()))
            .unwrap()
            .contains("All DONE."));
    }
}

//! The runner: a job's plan is a small DAG of steps, run with bounded parallelism, each with its
//! own timeout and retry policy, all cancellable. A failed step fails the plan with that step's
//! error; the other steps are cancelled.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How a step failed. Each kind is decided where the failure happens (the guard, the browser, a
/// connector), never guessed later from a message's text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// The guard refused it (already audited): what, on which target, and why.
    #[error("refused: {why}")]
    Refused {
        /// `navigation`, `file`, `file read`, `connector`.
        what: String,
        /// The URL, path or resource.
        target: String,
        /// Why, and how to allow it.
        why: String,
    },
    /// A consequential action the person refused, or nobody approved in time.
    #[error("refused: {0}")]
    NotApproved(String),
    /// Only the person can unblock it (reconnect an account): the job is held, not failed.
    #[error("{why}")]
    Held {
        /// The connection to fix (`google:default`), when it is one.
        connection: Option<String>,
        /// What the person should do.
        why: String,
    },
    /// Chromium died under the step.
    #[error("Chromium crashed during the step: {0}")]
    BrowserCrashed(String),
    /// Worth another try (network hiccup, a page still loading, a busy database).
    #[error("{0}")]
    Retryable(String),
    /// The step's input is wrong (an argument, a template, a schema): fix the skill or the job.
    #[error("{0}")]
    Invalid(String),
    /// Another try would fail the same way.
    #[error("{0}")]
    Fatal(String),
    /// The step ran past its timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The job was cancelled (or the agent is shutting down).
    #[error("cancelled")]
    Cancelled,
}

impl From<deskhand_browser::Error> for StepError {
    fn from(e: deskhand_browser::Error) -> StepError {
        match e {
            deskhand_browser::Error::BrowserGone(_) => StepError::BrowserCrashed(e.to_string()),
            deskhand_browser::Error::Navigation { .. } => StepError::Retryable(e.to_string()),
            // Not retried: a command cut off halfway (a half-filled form) must not run twice,
            // and the extension hub already waited for the browser to connect.
            other => StepError::Fatal(other.to_string()),
        }
    }
}

impl From<deskhand_connectors::ConnectorError> for StepError {
    fn from(e: deskhand_connectors::ConnectorError) -> StepError {
        use deskhand_connectors::ConnectorError as C;
        match e {
            C::NotConnected { ref connection, .. } | C::Stale { ref connection, .. } => {
                StepError::Held {
                    connection: Some(connection.clone()),
                    why: e.to_string(),
                }
            }
            e if e.needs_reconnect() => StepError::Held {
                connection: None,
                why: e.to_string(),
            },
            e @ (C::Transient { .. } | C::Quota { .. }) => StepError::Retryable(e.to_string()),
            e => StepError::Fatal(e.to_string()),
        }
    }
}

impl From<deskhand_workspace::WorkspaceError> for StepError {
    fn from(e: deskhand_workspace::WorkspaceError) -> StepError {
        match e {
            deskhand_workspace::WorkspaceError::Refused { rel, reason } => StepError::Refused {
                what: "file".into(),
                target: rel,
                why: reason.to_string(),
            },
            other => StepError::Retryable(other.to_string()),
        }
    }
}

impl From<crate::journal::JournalError> for StepError {
    fn from(e: crate::journal::JournalError) -> StepError {
        StepError::Retryable(e.to_string())
    }
}

impl From<tokio::task::JoinError> for StepError {
    fn from(e: tokio::task::JoinError) -> StepError {
        StepError::Fatal(format!("a worker thread of the step failed: {e}"))
    }
}

impl From<serde_json::Error> for StepError {
    fn from(e: serde_json::Error) -> StepError {
        StepError::Fatal(format!("a result could not be encoded: {e}"))
    }
}

impl From<crate::store::StoreError> for StepError {
    fn from(e: crate::store::StoreError) -> StepError {
        StepError::Retryable(e.to_string())
    }
}

/// When to try a failed step again. Defaults: 3 attempts, 200 ms then doubling, at most 5 s apart;
/// timeouts and retryable errors are retried, fatal errors and cancellation never.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (≥ 1).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Growth per attempt (≥ 1.0).
    pub multiplier: f64,
    /// Upper bound on one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial: Duration::from_millis(200),
            multiplier: 2.0,
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn once() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// Check the values make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err("multiplier must be a finite number ≥ 1".into());
        }
        Ok(())
    }

    /// The wait before attempt `attempt + 1` after `failure` on attempt `attempt` (1-based), or
    /// `None` to give up.
    pub fn next_delay(&self, attempt: u32, failure: &StepError) -> Option<Duration> {
        match failure {
            StepError::Retryable(_) | StepError::Timeout(_) => {}
            StepError::Refused { .. }
            | StepError::NotApproved(_)
            | StepError::Held { .. }
            | StepError::BrowserCrashed(_)
            | StepError::Invalid(_)
            | StepError::Fatal(_)
            | StepError::Cancelled => return None,
        }
        if attempt >= self.max_attempts {
            return None;
        }
        let factor = self.multiplier.powi(attempt.saturating_sub(1) as i32);
        Some(self.initial.mul_f64(factor).min(self.max_delay))
    }
}

/// What a step gets to work with.
pub struct StepCtx {
    /// The job.
    pub job_id: String,
    /// Outputs of the steps it needs, by step name.
    pub inputs: HashMap<String, Value>,
    /// Fires on cancel or shutdown; long steps must stop promptly.
    pub cancel: CancellationToken,
}

/// The work of one step.
pub type StepFn =
    Arc<dyn Fn(StepCtx) -> BoxFuture<'static, Result<Value, StepError>> + Send + Sync>;

/// One node of a plan.
#[derive(Clone)]
pub struct Step {
    /// Unique within the plan.
    pub name: String,
    /// Steps whose output this one needs.
    pub needs: Vec<String>,
    /// Per attempt.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// The work.
    pub run: StepFn,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish()
    }
}

impl Step {
    /// A step with the default timeout (60 s) and retry policy.
    pub fn new(name: &str, needs: &[&str], run: StepFn) -> Step {
        Step {
            name: name.into(),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            run,
        }
    }
}

/// Why a plan failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The plan itself is wrong (unknown dependency, cycle, duplicate name).
    #[error("invalid plan: {0}")]
    Plan(String),
    /// A step failed for good.
    #[error("step {step:?} failed after {attempts} attempt(s): {error}")]
    Step {
        /// Which.
        step: String,
        /// How many tries.
        attempts: u32,
        /// The last error.
        error: StepError,
    },
    /// Cancelled before finishing.
    #[error("cancelled")]
    Cancelled,
}

/// Check names are unique, dependencies exist, and there is no cycle.
pub fn validate(plan: &[Step]) -> Result<(), RunError> {
    let mut names = HashSet::new();
    for s in plan {
        if !names.insert(s.name.as_str()) {
            return Err(RunError::Plan(format!("two steps are named {:?}", s.name)));
        }
        s.retry
            .validate()
            .map_err(|e| RunError::Plan(format!("step {:?}: {e}", s.name)))?;
    }
    for s in plan {
        for n in &s.needs {
            if !names.contains(n.as_str()) {
                return Err(RunError::Plan(format!(
                    "step {:?} needs unknown step {n:?}",
                    s.name
                )));
            }
        }
    }
    // Kahn's algorithm: if not every step can be ordered, there is a cycle.
    let mut done: HashSet<&str> = HashSet::new();
    while done.len() < plan.len() {
        let before = done.len();
        for s in plan {
            if !done.contains(s.name.as_str()) && s.needs.iter().all(|n| done.contains(n.as_str()))
            {
                done.insert(&s.name);
            }
        }
        if done.len() == before {
            return Err(RunError::Plan(
                "the steps depend on each other in a cycle".into(),
            ));
        }
    }
    Ok(())
}

/// Run `plan` with at most `parallelism` steps at once. `on_start(n, name)` is called as step n
/// (1-based, in start order) begins. Returns every step's output.
pub async fn run_plan(
    plan: Vec<Step>,
    job_id: &str,
    parallelism: usize,
    cancel: CancellationToken,
    mut on_start: impl FnMut(u32, &str),
) -> Result<HashMap<String, Value>, RunError> {
    validate(&plan)?;
    let parallelism = parallelism.max(1);
    let mut outputs: HashMap<String, Value> = HashMap::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut running = tokio::task::JoinSet::new();
    let mut n = 0u32;
    // Steps of this plan stop together when one fails.
    let plan_cancel = cancel.child_token();
    loop {
        for s in &plan {
            if running.len() >= parallelism {
                break;
            }
            if started.contains(&s.name) || !s.needs.iter().all(|d| outputs.contains_key(d)) {
                continue;
            }
            started.insert(s.name.clone());
            n += 1;
            on_start(n, &s.name);
            let inputs = s
                .needs
                .iter()
                .map(|d| (d.clone(), outputs[d].clone()))
                .collect();
            let step = s.clone();
            let ctx_cancel = plan_cancel.clone();
            let job = job_id.to_string();
            running.spawn(async move {
                let r = run_step(&step, &job, inputs, ctx_cancel).await;
                (step.name, r)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (name, result) = joined.map_err(|e| RunError::Step {
            step: "?".into(),
            attempts: 1,
            error: StepError::Fatal(format!("step panicked: {e}")),
        })?;
        match result {
            Ok(v) => {
                outputs.insert(name, v);
            }
            Err(e) => {
                plan_cancel.cancel();
                while running.join_next().await.is_some() {}
                return Err(if cancel.is_cancelled() {
                    RunError::Cancelled
                } else {
                    e
                });
            }
        }
    }
    if cancel.is_cancelled() && outputs.len() < plan.len() {
        return Err(RunError::Cancelled);
    }
    Ok(outputs)
}

async fn run_step(
    step: &Step,
    job_id: &str,
    inputs: HashMap<String, Value>,
    cancel: CancellationToken,
) -> Result<Value, RunError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ctx = StepCtx {
            job_id: job_id.to_string(),
            inputs: inputs.clone(),
            cancel: cancel.clone(),
        };
        let fut = (step.run)(ctx);
        let result = tokio::select! {
            _ = cancel.cancelled() => Err(StepError::Cancelled),
            r = tokio::time::timeout(step.timeout, fut) => r.unwrap_or(Err(StepError::Timeout(step.timeout))),
        };
        let error = match result {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if error == StepError::Cancelled {
            return Err(RunError::Cancelled);
        }
        match step.retry.next_delay(attempt, &error) {
            Some(d) => {
                tracing::info!(job = job_id, step = %step.name, attempt, %error, "step failed; retrying in {d:?}");
                tokio::select! {
                    _ = cancel.cancelled() => return Err(RunError::Cancelled),
                    _ = tokio::time::sleep(d) => {}
                }
            }
            None => {
                return Err(RunError::Step {
                    step: step.name.clone(),
                    attempts: attempt,
                    error,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn step(
        name: &str,
        needs: &[&str],
        f: impl Fn(StepCtx) -> Result<Value, StepError> + Send + Sync + 'static,
    ) -> Step {
        let f = Arc::new(f);
        let mut s = Step::new(
            name,
            needs,
            Arc::new(move |ctx| {
                let f = Arc::clone(&f);
                Box::pin(async move { f(ctx) })
            }),
        );
        s.retry.initial = Duration::from_millis(1);
        s
    }

    #[test]
    fn retry_policy_is_a_pure_function() {
        let p = RetryPolicy::default();
        let r = StepError::Retryable("x".into());
        assert_eq!(p.next_delay(1, &r), Some(Duration::from_millis(200)));
        assert_eq!(p.next_delay(2, &r), Some(Duration::from_millis(400)));
        assert_eq!(p.next_delay(3, &r), None);
        assert_eq!(p.next_delay(1, &StepError::Fatal("x".into())), None);
        assert!(RetryPolicy {
            max_attempts: 0,
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[tokio::test]
    async fn dag_runs_dependencies_first_and_passes_outputs() {
        let plan = vec![
            step("report", &["mail", "cal"], |c| {
                Ok(Value::from(format!(
                    "{}+{}",
                    c.inputs["mail"], c.inputs["cal"]
                )))
            }),
            step("mail", &[], |_| Ok(Value::from(1))),
            step("cal", &[], |_| Ok(Value::from(2))),
        ];
        let mut order = Vec::new();
        let out = run_plan(plan, "j", 2, CancellationToken::new(), |n, s| {
            order.push((n, s.to_string()))
        })
        .await
        .unwrap();
        assert_eq!(out["report"], "1+2");
        assert_eq!(order.last().unwrap(), &(3, "report".to_string()));
    }

    #[tokio::test]
    async fn retries_then_fails_with_the_step_error() {
        let tries = Arc::new(AtomicU32::new(0));
        let t = tries.clone();
        let plan = vec![step("flaky", &[], move |_| {
            t.fetch_add(1, Ordering::SeqCst);
            Err(StepError::Retryable("503 from server".into()))
        })];
        let e = run_plan(plan, "j", 1, CancellationToken::new(), |_, _| {})
            .await
            .unwrap_err();
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        assert!(
            e.to_string().contains("flaky") && e.to_string().contains("503"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn bad_plans_are_refused_and_cancel_stops_a_long_step() {
        let cyc = vec![
            step("a", &["b"], |_| Ok(Value::Null)),
            step("b", &["a"], |_| Ok(Value::Null)),
        ];
        assert!(matches!(
            run_plan(cyc, "j", 1, CancellationToken::new(), |_, _| {}).await,
            Err(RunError::Plan(_))
        ));
        let unknown = vec![step("a", &["zzz"], |_| Ok(Value::Null))];
        assert!(
            run_plan(unknown, "j", 1, CancellationToken::new(), |_, _| {})
                .await
                .unwrap_err()
                .to_string()
                .contains("zzz")
        );
        let long = Step::new(
            "long",
            &[],
            Arc::new(|_| {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(Value::Null)
                })
            }),
        );
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c2.cancel();
        });
        let t = std::time::Instant::now();
        assert_eq!(
            run_plan(vec![long], "j", 1, cancel, |_, _| {}).await,
            Err(RunError::Cancelled)
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

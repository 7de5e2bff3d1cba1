//! The job envelope and the job's life as an explicit state machine.
//!
//! The machine is data: [`TRANSITIONS`] lists every allowed (state, event, next state);
//! [`next_state`] looks events up in it, and this table is its rendering ([`render_transitions`];
//! a test keeps the two equal). An event not in the table is refused: terminal states absorb
//! every late event, and a step cannot happen before the start.
//!
//! ```text
//! state \ event  start      step       succeed    fail       cancel     requeue    hold       progress
//! queued         running    -          -          failed     cancelled  queued     held       -
//! running        running    running    succeeded  failed     cancelled  queued     held       running
//! held           -          -          -          failed     cancelled  queued     held       -
//! succeeded      -          -          -          -          -          -          -          -
//! failed         -          -          -          -          -          -          -          -
//! cancelled      -          -          -          -          -          -          -          -
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The skill a request in plain words runs as: the planner's action (defined here, where the
/// envelope is resolved, so the envelope does not depend on the planner).
pub const PLANNED: &str = "agent.ask";

/// Largest job envelope we accept, in bytes.
pub const MAX_JOB_BYTES: usize = 64 * 1024;

/// One unit of requested work, as it travels through a queue. Documented in `docs/jobs.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// ULID: unique, sortable by creation time.
    pub id: ulid::Ulid,
    /// The skill to run (e.g. `browser.fill`); exactly one of `skill` and `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// A trigger line such as `/browser.extract url=https://…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Skill parameters.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// The sending device's id.
    pub origin: String,
    /// When the sender created it.
    pub created_at: DateTime<Utc>,
    /// Random, per job: lets the signature check refuse replays.
    pub nonce: String,
    /// Filled in by signed dispatch (guardrails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The job this one retries, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<ulid::Ulid>,
}

/// Why a job envelope was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Over [`MAX_JOB_BYTES`].
    #[error(
        "job is {0} bytes; the limit is {MAX_JOB_BYTES} bytes — send large inputs as files or URLs"
    )]
    TooLarge(usize),
    /// Not JSON, wrong types, unknown fields.
    #[error("malformed job: {0}")]
    Malformed(String),
    /// Structurally fine but not meaningful.
    #[error("invalid job: {0}")]
    Invalid(String),
    /// Not signed by a paired device, altered, replayed or stale (see `guard::devices`).
    #[error("job refused: {0}")]
    Signature(String),
    /// A workspace skill the person has not accepted (new, or edited since).
    #[error("skill {0} is not trusted (new, or changed since it was trusted); review its permissions and accept them with `deskhand skills trust {0}`")]
    Untrusted(String),
    /// A value holds a character its kind does not allow: a control character (C0, DEL, C1) or
    /// a bidi control, which would reach terminals, logs and mail headers (issue 14).
    #[error("{field} holds a control character ({found}); {rule}")]
    ControlCharacter {
        /// Which value, e.g. `parameter "title" of browser.fill`.
        field: String,
        /// The character, as `U+001B`.
        found: String,
        /// What the value may hold instead.
        rule: &'static str,
    },
    /// Names a skill this agent does not have.
    #[error("unknown skill {name:?}; available: {available}")]
    UnknownSkill {
        /// What was asked for.
        name: String,
        /// What exists.
        available: String,
    },
}

impl JobError {
    /// Short machine code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            JobError::TooLarge(_) => "too_large",
            JobError::Malformed(_) => "bad_request",
            JobError::Invalid(_) => "invalid_job",
            JobError::UnknownSkill { .. } => "unknown_skill",
            JobError::Untrusted(_) => "untrusted_skill",
            JobError::Signature(_) => "bad_signature",
            // One of the API's documented codes; the message names the value and the character.
            JobError::ControlCharacter { .. } => "invalid_job",
        }
    }
}

impl Job {
    /// A new job for `skill` from device `origin`.
    pub fn new(
        skill: impl Into<String>,
        params: Map<String, Value>,
        origin: impl Into<String>,
    ) -> Job {
        Job {
            id: ulid::Ulid::new(),
            skill: Some(skill.into()),
            text: None,
            params,
            origin: origin.into(),
            created_at: Utc::now(),
            nonce: random_hex(16),
            signature: None,
            retry_of: None,
        }
    }

    /// Parse and validate an envelope from the wire.
    pub fn from_bytes(bytes: &[u8]) -> Result<Job, JobError> {
        if bytes.len() > MAX_JOB_BYTES {
            return Err(JobError::TooLarge(bytes.len()));
        }
        let job: Job =
            serde_json::from_slice(bytes).map_err(|e| JobError::Malformed(e.to_string()))?;
        job.validate()?;
        Ok(job)
    }

    /// Serialize for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job always serializes")
    }

    /// Structural checks that serde cannot express.
    pub fn validate(&self) -> Result<(), JobError> {
        match (&self.skill, &self.text) {
            (Some(_), Some(_)) => {
                return Err(JobError::Invalid(
                    "give either `skill` or `text`, not both".into(),
                ))
            }
            (None, None) => {
                return Err(JobError::Invalid(
                    "a job needs a `skill` (or a `text` trigger such as \"/browser.fill\")".into(),
                ))
            }
            (Some(s), None) if s.trim().is_empty() => {
                return Err(JobError::Invalid("`skill` is empty".into()))
            }
            (None, Some(t)) if t.trim().is_empty() => {
                return Err(JobError::Invalid(
                    "`text` is empty: say what to do, or give a trigger such as \"/status-report\""
                        .into(),
                ))
            }
            _ => {}
        }
        if self.origin.trim().is_empty() || self.origin.len() > 128 {
            return Err(JobError::Invalid(
                "`origin` must name the sending device (1–128 characters)".into(),
            ));
        }
        if self.nonce.len() < 8 || self.nonce.len() > 128 {
            return Err(JobError::Invalid("`nonce` must be 8–128 characters".into()));
        }
        // Values of parameters are checked against their types (skills::check_params); the
        // envelope's own strings have no type that allows control characters, except a trigger
        // line, which may carry a multi-line `text` value.
        let names = [
            ("`skill`", self.skill.as_deref()),
            ("`origin`", Some(self.origin.as_str())),
            ("`nonce`", Some(self.nonce.as_str())),
        ];
        for (field, v) in names {
            single_line(field, v.unwrap_or_default())?;
        }
        for k in self.params.keys() {
            single_line(&format!("a parameter name ({})", k.escape_debug()), k)?;
        }
        if let Some(t) = &self.text {
            multi_line("`text`", t)?;
        }
        Ok(())
    }

    /// The skill name and parameters, resolving a `text` trigger (`/skill k=v k2=v2`).
    pub fn resolved(&self) -> (String, Map<String, Value>) {
        if let Some(s) = &self.skill {
            return (s.clone(), self.params.clone());
        }
        let text = self.text.as_deref().unwrap_or_default().trim();
        // Plain words go to the planner; a trigger names a skill.
        if !text.starts_with('/') {
            let mut params = self.params.clone();
            params.insert("request".into(), Value::String(text.to_string()));
            return (PLANNED.to_string(), params);
        }
        // Shell-like words, so `/schedule "0 8 * * 1-5" status-report` keeps the cron together.
        let words = shlex::split(text)
            .unwrap_or_else(|| text.split_whitespace().map(String::from).collect());
        let mut parts = words.into_iter();
        let name = parts
            .next()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let mut params = self.params.clone();
        let mut positional = Vec::new();
        for p in parts {
            match p.split_once('=') {
                Some((k, v)) if !k.is_empty() && !k.contains(' ') => {
                    params.insert(k.to_string(), Value::String(v.to_string()));
                }
                _ => positional.push(Value::String(p)),
            }
        }
        if !positional.is_empty() {
            params.insert("args".into(), Value::Array(positional));
        }
        (name, params)
    }
}

/// Refuse any control character in a one-line value: C0 (tab, newline and CR included), DEL,
/// C1 and bidi controls. A newline in a one-line value is how headers get injected.
pub fn single_line(field: &str, v: &str) -> Result<(), JobError> {
    match v.chars().find(|&c| crate::cli::safe_text::is_control(c)) {
        Some(c) => Err(JobError::ControlCharacter {
            field: field.to_string(),
            found: format!("U+{:04X}", c as u32),
            rule: SINGLE_LINE_RULE,
        }),
        None => Ok(()),
    }
}

/// Refuse control characters in multi-line text, except tab, newline and CR.
pub fn multi_line(field: &str, v: &str) -> Result<(), JobError> {
    match v
        .chars()
        .find(|&c| !matches!(c, '\t' | '\n' | '\r') && crate::cli::safe_text::is_control(c))
    {
        Some(c) => Err(JobError::ControlCharacter {
            field: field.to_string(),
            found: format!("U+{:04X}", c as u32),
            rule: MULTI_LINE_RULE,
        }),
        None => Ok(()),
    }
}

/// What a one-line value may hold (in [`JobError::ControlCharacter`]).
pub const SINGLE_LINE_RULE: &str = "one-line values take no control characters (not even tab or newline) and no bidi controls; a skill parameter declared `type: text` takes tab and newline";
/// What multi-line text may hold.
pub const MULTI_LINE_RULE: &str = "text may hold tab, newline and CR, but no other control characters and no bidi controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)";

/// Hex string of `n` random bytes (nonces, tokens).
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting in the queue.
    Queued,
    /// An agent is running it.
    Running,
    /// Finished well.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Waiting for the person (a connection to reconnect); resumes by itself once fixed.
    Held,
}

impl JobState {
    /// Every state, in the table's row order.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Held,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// No further transitions.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Held => "held",
        }
    }

    /// Parse a stored state.
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            "held" => JobState::Held,
            _ => return None,
        })
    }
}

/// Something that happens to a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// An agent took it.
    Start {
        /// Steps the plan has.
        steps: u32,
    },
    /// Step `n` of the plan began.
    Step {
        /// 1-based.
        n: u32,
        /// Its name.
        name: String,
    },
    /// Done.
    Succeed,
    /// Done, badly.
    Fail(String),
    /// Stopped on request.
    Cancel,
    /// Handed back to the queue (graceful shutdown, redelivery).
    Requeue(String),
    /// Park the job until the person fixes something (the reason says what and how).
    Hold(String),
    /// Work in progress that changes no state: what a planned job's model says, the tools it
    /// calls (for the terminal, the API's event stream and the phone).
    Progress {
        /// What kind of progress.
        kind: Progress,
        /// The text to show.
        text: String,
    },
}

/// The kinds of [`Transition::Progress`]; each is the `kind` of its [`JobEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Text the model wrote (streamed, a piece at a time).
    Say,
    /// A tool the model calls, with a short view of its arguments.
    Tool,
}

impl Progress {
    /// Its `kind` in a [`JobEvent`].
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::Say => "say",
            Progress::Tool => "tool",
        }
    }
}

/// The kind of a [`Transition`], without its data: the columns of [`TRANSITIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// [`Transition::Start`].
    Start,
    /// [`Transition::Step`].
    Step,
    /// [`Transition::Succeed`].
    Succeed,
    /// [`Transition::Fail`].
    Fail,
    /// [`Transition::Cancel`].
    Cancel,
    /// [`Transition::Requeue`].
    Requeue,
    /// [`Transition::Hold`].
    Hold,
    /// [`Transition::Progress`].
    Progress,
}

impl Event {
    /// Every event, in the table's column order.
    pub const ALL: [Event; 8] = [
        Event::Start,
        Event::Step,
        Event::Succeed,
        Event::Fail,
        Event::Cancel,
        Event::Requeue,
        Event::Hold,
        Event::Progress,
    ];

    /// Its name in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Step => "step",
            Event::Succeed => "succeed",
            Event::Fail => "fail",
            Event::Cancel => "cancel",
            Event::Requeue => "requeue",
            Event::Hold => "hold",
            Event::Progress => "progress",
        }
    }
}

impl Transition {
    /// Which column of [`TRANSITIONS`] this event is.
    pub fn event(&self) -> Event {
        match self {
            Transition::Start { .. } => Event::Start,
            Transition::Step { .. } => Event::Step,
            Transition::Succeed => Event::Succeed,
            Transition::Fail(_) => Event::Fail,
            Transition::Cancel => Event::Cancel,
            Transition::Requeue(_) => Event::Requeue,
            Transition::Hold(_) => Event::Hold,
            Transition::Progress { .. } => Event::Progress,
        }
    }
}

/// Every allowed transition: in `state`, `event` leads to the third state. Anything not listed is
/// refused (absorbed). Queued → held is listed: the held-job watcher requeues a job first and
/// parks it again when the queue would not take it.
pub const TRANSITIONS: &[(JobState, Event, JobState)] = {
    use Event as E;
    use JobState::*;
    &[
        (Queued, E::Start, Running),
        (Queued, E::Fail, Failed),
        (Queued, E::Cancel, Cancelled),
        (Queued, E::Requeue, Queued),
        (Queued, E::Hold, Held),
        (Running, E::Start, Running),
        (Running, E::Step, Running),
        (Running, E::Succeed, Succeeded),
        (Running, E::Fail, Failed),
        (Running, E::Cancel, Cancelled),
        (Running, E::Requeue, Queued),
        (Running, E::Hold, Held),
        (Running, E::Progress, Running),
        (Held, E::Fail, Failed),
        (Held, E::Cancel, Cancelled),
        (Held, E::Requeue, Queued),
        (Held, E::Hold, Held),
    ]
};

/// The new state for `event` in `state`, or `None` when [`TRANSITIONS`] does not allow it (the
/// event is absorbed).
pub fn next_state(state: JobState, event: &Transition) -> Option<JobState> {
    let event = event.event();
    TRANSITIONS
        .iter()
        .find(|(s, e, _)| *s == state && *e == event)
        .map(|(_, _, to)| *to)
}

/// [`TRANSITIONS`] as a grid (rows: states, columns: events, `-`: refused), as the module doc
/// shows it.
pub fn render_transitions() -> String {
    let cell = |s: &str| format!("{s:<10}");
    let mut out = format!("{:<15}", "state \\ event");
    for e in Event::ALL {
        out.push_str(&cell(e.as_str()));
        out.push(' ');
    }
    for s in JobState::ALL {
        out = out.trim_end().to_string();
        out.push('\n');
        out.push_str(&format!("{:<15}", s.as_str()));
        for e in Event::ALL {
            let to = TRANSITIONS
                .iter()
                .find(|(from, ev, _)| *from == s && *ev == e)
                .map_or("-", |(_, _, to)| to.as_str());
            out.push_str(&cell(to));
            out.push(' ');
        }
    }
    out.trim_end().to_string() + "\n"
}

/// What subscribers (CLI, phone page, NATS) see of a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Order within the store (0 when not stored yet).
    pub seq: i64,
    /// The job.
    pub job_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// queued, running, step, succeeded, failed, cancelled, held; `say` and `tool` for a
    /// planned job's progress.
    pub kind: String,
    /// The state after the event.
    pub state: JobState,
    /// Current step (1-based; 0 before the first).
    pub step: u32,
    /// Steps in the plan.
    pub steps: u32,
    /// Human text: the step's name, the error, …
    pub message: String,
}

impl JobEvent {
    /// Does the job end here?
    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }
}

/// Yield events up to and including the first terminal one, then end at once (without waiting
/// for another event that would never come).
pub fn until_terminal(
    events: futures::stream::BoxStream<'static, JobEvent>,
) -> futures::stream::BoxStream<'static, JobEvent> {
    use futures::StreamExt;
    Box::pin(futures::stream::unfold(
        (events, false),
        |(mut s, done)| async move {
            if done {
                return None;
            }
            let e = s.next().await?;
            let end = e.is_terminal();
            Some((e, (s, end)))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job::new("browser.fill", Map::new(), "phone-1")
    }

    #[test]
    fn round_trips_and_refuses_unknown_fields() {
        let j = job();
        assert_eq!(Job::from_bytes(&j.to_bytes()).unwrap(), j);
        let mut v: Value = serde_json::to_value(&j).unwrap();
        v["extra"] = Value::Bool(true);
        let e = Job::from_bytes(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn refuses_bad_envelopes_with_reasons() {
        assert!(matches!(
            Job::from_bytes(b"not json"),
            Err(JobError::Malformed(_))
        ));
        assert!(matches!(
            Job::from_bytes(&vec![b' '; MAX_JOB_BYTES + 1]),
            Err(JobError::TooLarge(_))
        ));
        let mut j = job();
        j.text = Some("/x".into());
        assert!(j.validate().unwrap_err().to_string().contains("not both"));
        j.skill = None;
        // Plain words are a request for the planner; blank text is refused.
        j.text = Some("extract the prices".into());
        assert!(j.validate().is_ok());
        let (skill, params) = j.resolved();
        assert_eq!(skill, crate::planner::ACTION);
        assert_eq!(params["request"], "extract the prices");
        j.text = Some("  \n ".into());
        assert!(j
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`text` is empty"));
        let mut v: Value = serde_json::to_value(job()).unwrap();
        v["params"] = Value::String("x".into());
        assert!(Job::from_bytes(v.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .contains("invalid type"));
    }

    #[test]
    fn control_characters_in_the_envelope_are_refused() {
        let refused = |j: &Job| match j.validate() {
            Err(JobError::ControlCharacter { field, found, .. }) => format!("{field} {found}"),
            other => panic!("expected a control-character refusal, got {other:?}"),
        };
        let mut j = job();
        j.skill = Some("browser.fill\u{1b}[2J".into());
        assert_eq!(refused(&j), "`skill` U+001B");
        let mut j = job();
        j.origin = "phone\u{202e}".into();
        assert_eq!(refused(&j), "`origin` U+202E");
        let mut j = job();
        j.params.insert("ti\ntle".into(), Value::String("x".into()));
        assert!(refused(&j).contains("parameter name"));
        let mut j = job();
        j.skill = None;
        j.text = Some("/gmail.send body='two\nlines'".into());
        assert!(
            j.validate().is_ok(),
            "a trigger line may carry multi-line text"
        );
        j.text = Some("/x title=\u{1b}]0;owned\u{7}".into());
        assert_eq!(refused(&j), "`text` U+001B");
        assert_eq!(
            JobError::ControlCharacter {
                field: String::new(),
                found: String::new(),
                rule: ""
            }
            .code(),
            "invalid_job"
        );
    }

    #[test]
    fn one_line_and_multi_line_rules() {
        assert!(single_line("f", "plain — ünïcode ✓").is_ok());
        for bad in [
            "a\tb", "a\nb", "a\rb", "\u{7f}", "\u{85}", "\u{9b}", "\u{2066}",
        ] {
            assert!(single_line("f", bad).is_err(), "{bad:?}");
        }
        assert!(multi_line("f", "line 1\r\n\tline 2\n").is_ok());
        for bad in ["\u{1b}[2J", "\u{0}", "\u{7}", "\u{9b}", "\u{202e}"] {
            assert!(multi_line("f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_triggers_resolve() {
        let mut j = job();
        j.skill = None;
        j.text = Some("/browser.extract url=http://x format=csv".into());
        let (s, p) = j.resolved();
        assert_eq!(s, "browser.extract");
        assert_eq!(p["format"], "csv");
    }

    #[test]
    fn transition_table() {
        use JobState::*;
        assert_eq!(
            next_state(Queued, &Transition::Start { steps: 2 }),
            Some(Running)
        );
        assert_eq!(
            next_state(
                Queued,
                &Transition::Step {
                    n: 1,
                    name: "x".into()
                }
            ),
            None
        );
        assert_eq!(next_state(Running, &Transition::Succeed), Some(Succeeded));
        assert_eq!(
            next_state(Running, &Transition::Requeue("shutdown".into())),
            Some(Queued)
        );
        for t in [Succeeded, Failed, Cancelled] {
            assert_eq!(
                next_state(t, &Transition::Start { steps: 1 }),
                None,
                "terminal states absorb"
            );
            assert_eq!(next_state(t, &Transition::Fail("late".into())), None);
            assert_eq!(next_state(t, &Transition::Hold("late".into())), None);
        }
        // Held: parked until the person fixes the cause; never run or finished from there.
        let hold = Transition::Hold("reconnect".into());
        assert_eq!(next_state(Running, &hold), Some(Held));
        assert!(!Held.is_terminal());
        assert_eq!(next_state(Held, &Transition::Start { steps: 1 }), None);
        assert_eq!(next_state(Held, &Transition::Succeed), None);
        assert_eq!(
            next_state(Held, &Transition::Requeue("fixed".into())),
            Some(Queued)
        );
        assert_eq!(next_state(Held, &Transition::Cancel), Some(Cancelled));
        assert_eq!(JobState::parse("held"), Some(Held));
    }

    /// One transition of each kind, with whatever data.
    fn sample(e: Event) -> Transition {
        match e {
            Event::Start => Transition::Start { steps: 1 },
            Event::Step => Transition::Step {
                n: 1,
                name: "x".into(),
            },
            Event::Succeed => Transition::Succeed,
            Event::Fail => Transition::Fail("why".into()),
            Event::Cancel => Transition::Cancel,
            Event::Requeue => Transition::Requeue("why".into()),
            Event::Hold => Transition::Hold("why".into()),
            Event::Progress => Transition::Progress {
                kind: Progress::Say,
                text: "hi".into(),
            },
        }
    }

    /// The grid in this file's module doc, as lines.
    fn documented_grid() -> Vec<String> {
        let src = include_str!("job.rs");
        let start = src.find("//! ```text\n").expect("the doc has a table") + 12;
        let end = start + src[start..].find("//! ```\n").expect("the table ends");
        src[start..end]
            .lines()
            .map(|l| {
                l.trim_start_matches("//!")
                    .trim_start_matches(' ')
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn the_documented_table_is_the_rendering_of_transitions() {
        let rendered: Vec<String> = render_transitions().lines().map(String::from).collect();
        assert_eq!(
            documented_grid(),
            rendered,
            "the module doc's table drifted from TRANSITIONS; paste render_transitions() into it"
        );
        assert!(
            include_str!("../../docs/ARCHITECTURE.md").contains(&render_transitions()),
            "docs/ARCHITECTURE.md's job state table drifted from TRANSITIONS"
        );
    }

    #[test]
    fn every_state_and_event_pair_follows_the_table() {
        // Read the expectation from the documented grid (checked above against TRANSITIONS), so
        // next_state is tested against what a reader sees, cell by cell.
        let grid = documented_grid();
        let header: Vec<&str> = grid[0].split_whitespace().skip(3).collect();
        assert_eq!(
            header,
            Event::ALL.map(Event::as_str).to_vec(),
            "one column per event"
        );
        assert_eq!(grid.len(), 1 + JobState::ALL.len(), "one row per state");
        let mut pairs = 0;
        for row in &grid[1..] {
            let cells: Vec<&str> = row.split_whitespace().collect();
            let state = JobState::parse(cells[0]).expect("a state");
            for (e, cell) in Event::ALL.into_iter().zip(&cells[1..]) {
                let expected = match *cell {
                    "-" => None,
                    s => Some(JobState::parse(s).expect("a state")),
                };
                assert_eq!(
                    next_state(state, &sample(e)),
                    expected,
                    "{} on {}",
                    e.as_str(),
                    state.as_str()
                );
                assert_eq!(sample(e).event(), e);
                pairs += 1;
            }
            if state.is_terminal() {
                assert!(
                    cells[1..].iter().all(|c| *c == "-"),
                    "terminal {} absorbs everything",
                    state.as_str()
                );
            }
        }
        assert_eq!(pairs, JobState::ALL.len() * Event::ALL.len());
        // No pair is listed twice (the lookup would silently take the first).
        for (i, (s, e, _)) in TRANSITIONS.iter().enumerate() {
            assert!(
                !TRANSITIONS[i + 1..]
                    .iter()
                    .any(|(s2, e2, _)| s2 == s && e2 == e),
                "{} on {} listed twice",
                e.as_str(),
                s.as_str()
            );
        }
    }

    #[test]
    fn a_job_writes_back_byte_for_byte_so_its_signature_verifies() {
        // Without serde_json's float_roundtrip, 20.5e+300 was read back as a neighbouring float
        // after a trip through the wire, so the bytes a verifier re-serialises differed from the
        // bytes signed (found by fuzzing, issue 14).
        let text = r#"{"id":"01JD5S8Q3K3W9Z6V4Y0M1T2R9X","skill":"noop","params":{"n":20.5e+300,"m":0.1,"k":-1.5e-310},"origin":"phone","created_at":"2026-11-26T09:00:00Z","nonce":"0c1f0e8q3k3w"}"#;
        let job = Job::from_bytes(text.as_bytes()).unwrap();
        let wire = job.to_bytes();
        assert_eq!(
            String::from_utf8(Job::from_bytes(&wire).unwrap().to_bytes()).unwrap(),
            String::from_utf8(wire).unwrap()
        );
        let d = tempfile::tempdir().unwrap();
        let devices = crate::guard::devices::Devices::new(d.path());
        let (_, secret) = devices.pair("phone").unwrap();
        let mut signed = job.clone();
        crate::guard::devices::DeviceKey::parse(&secret)
            .unwrap()
            .sign(&mut signed);
        let received = Job::from_bytes(&signed.to_bytes()).unwrap();
        devices.verify(&received, Utc::now()).unwrap();
    }
}

//! The job envelope and the job's life as an explicit state machine.
//!
//! ```text
//! state \ event   Start     Step(n,m)  Succeed    Fail      Cancel     Requeue   Hold
//! queued          running   -          -          failed    cancelled  queued    -
//! running         running   running    succeeded  failed    cancelled  queued    held
//! held            -         -          -          failed    cancelled  queued    held
//! succeeded       (terminal: every later event is absorbed)
//! failed          (terminal)
//! cancelled       (terminal)
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
            (None, Some(t)) if !t.trim_start().starts_with('/') => {
                return Err(JobError::Invalid(format!(
                    "`text` {t:?} is not a trigger; it must start with '/', e.g. \"/browser.fill\""
                )))
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
}

/// The new state for `event` in `state`, or `None` when the event is absorbed (terminal states
/// absorb everything; a step cannot happen before the start).
pub fn next_state(state: JobState, event: &Transition) -> Option<JobState> {
    use JobState::*;
    use Transition as T;
    match (state, event) {
        (s, _) if s.is_terminal() => None,
        (Queued | Running, T::Start { .. }) => Some(Running),
        (Running, T::Step { .. }) => Some(Running),
        (Running, T::Succeed) => Some(Succeeded),
        (Queued | Running | Held, T::Fail(_)) => Some(Failed),
        (Queued | Running | Held, T::Cancel) => Some(Cancelled),
        (Queued | Running | Held, T::Requeue(_)) => Some(Queued),
        (Queued | Running | Held, T::Hold(_)) => Some(Held),
        _ => None,
    }
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
    /// queued, running, step, succeeded, failed, cancelled.
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
        j.text = Some("hello".into());
        assert!(j
            .validate()
            .unwrap_err()
            .to_string()
            .contains("must start with '/'"));
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

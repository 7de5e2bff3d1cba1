//! Admission: the one gate between a job and this agent. Every entry point (a queue delivery,
//! [`Agent::run_now`](super::Agent::run_now), [`submit`]) asks [`admit`]; it checks the envelope,
//! who signed it, the skill (known, trusted, parameters well typed) and the size, each entry in
//! its own order, and records a refusal as `job.refused` with a reason code, here and nowhere else.

use serde_json::{Map, Value};

use super::AgentError;
use crate::guard::devices::{signer_of, Devices, SignatureError};
use crate::job::{Job, JobError, MAX_JOB_BYTES};
use crate::queue::Queue;
use crate::skills::{SkillDef, Skills};
use crate::store::{JobRecord, Store, StoreError};

/// Where a job comes in; each entry checks what it must, in its own order.
pub(crate) enum Entry<'a> {
    /// Bytes from the queue, parsed or not: signed by a paired device, checked against the
    /// ledger's copy when this agent has accepted the job before.
    Delivered {
        /// The envelope as parsed from `body`.
        parsed: &'a Result<Job, JobError>,
        /// The bytes delivered.
        body: &'a [u8],
        /// The ledger's record of this job, if it has one.
        known: Option<&'a JobRecord>,
        /// When a hub's stream took it in: the signing time is checked against this, so a job
        /// that waited for a sleeping desktop still runs (its nonce still runs it only once).
        queued_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// A delivered job the ledger will run: its skill, checked as it stands now.
    Runnable(&'a Job),
    /// Run here and now: the envelope and the skill.
    RunNow(&'a Job),
    /// Submitted on this desktop (API, CLI, schedules): the envelope, the signature of a job
    /// signed elsewhere, the skill, the size and, for a job signed elsewhere, an unused nonce.
    Submitted {
        /// The job, signed.
        job: &'a Job,
        /// Signed here just now with this desktop's own key (nothing to verify or replay).
        self_signed: bool,
    },
}

/// A job let in; for the entries that check the skill, the skill and its typed parameters.
pub(crate) struct Admitted {
    /// The skill to run and its checked parameters.
    pub skill: Option<(SkillDef, Map<String, Value>)>,
}

/// Why a job was refused: the error for callers and the reason recorded and dead-lettered.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// What callers get (its [`JobError::code`] is the reason code).
    pub error: JobError,
    /// What the audit log and the dead letter say.
    pub reason: String,
    /// The job, when the envelope names one.
    pub job_id: Option<String>,
}

impl Refusal {
    fn of(error: JobError) -> Refusal {
        Refusal {
            reason: error.to_string(),
            error,
            job_id: None,
        }
    }

    /// The short machine code recorded with the refusal.
    pub fn code(&self) -> &'static str {
        self.error.code()
    }
}

/// Why admission did not let a job in.
#[derive(Debug)]
pub(crate) enum Denied {
    /// Refused, and recorded as `job.refused` (once, by [`admit`]).
    Refused(Refusal),
    /// Could not decide: the state database failed. Nothing is recorded.
    Failed(StoreError),
}

impl Denied {
    /// The job id and the reason a dead letter records.
    pub fn for_dead_letter(self) -> (Option<String>, String) {
        match self {
            Denied::Refused(r) => (r.job_id, r.reason),
            Denied::Failed(e) => (None, e.to_string()),
        }
    }
}

impl From<Denied> for AgentError {
    fn from(d: Denied) -> AgentError {
        match d {
            Denied::Refused(r) => AgentError::Job(r.error),
            Denied::Failed(e) => AgentError::Store(e),
        }
    }
}

/// Decide whether `entry`'s job may come in; a refusal is audited here, once, with its reason
/// code. What the caller does with a refused job (dead-letter it, fail it, answer the API) is
/// the caller's.
pub(crate) async fn admit(
    store: &Store,
    skills: &Skills,
    entry: Entry<'_>,
) -> Result<Admitted, Denied> {
    let origin = match &entry {
        Entry::Delivered { parsed, .. } => parsed.as_ref().ok().map(|j| j.origin.as_str()),
        Entry::Runnable(job) | Entry::RunNow(job) | Entry::Submitted { job, .. } => {
            Some(job.origin.as_str())
        }
    };
    let id = match &entry {
        Entry::Delivered { parsed, body, .. } => match parsed {
            Ok(j) => Some(j.id.to_string()),
            // A malformed envelope may still name its job.
            Err(_) => serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["id"].as_str().map(String::from)),
        },
        Entry::Runnable(job) | Entry::RunNow(job) | Entry::Submitted { job, .. } => {
            Some(job.id.to_string())
        }
    };
    match checks(store, skills, entry).await {
        Ok(a) => Ok(a),
        Err(Denied::Refused(mut r)) => {
            r.job_id = id;
            let mut details = serde_json::json!({"reason": r.reason, "code": r.code()});
            if let Some(o) = origin {
                details["origin"] = Value::String(o.to_string());
            }
            store
                .audit()
                .record("job.refused", r.job_id.as_deref(), details);
            Err(Denied::Refused(r))
        }
        Err(failed) => Err(failed),
    }
}

/// The checks of each entry, in order; the first refusal wins.
async fn checks(store: &Store, skills: &Skills, entry: Entry<'_>) -> Result<Admitted, Denied> {
    let refused = |e: JobError| Denied::Refused(Refusal::of(e));
    let skill_of = |job: &Job| {
        let (name, params) = job.resolved();
        // `mcp.call` is how the MCP server runs a client's tool call; from anywhere else it
        // would be a second, unannounced way in.
        if name == crate::mcp::ACTION && job.origin != crate::mcp::ORIGIN {
            return Err(refused(JobError::Invalid(format!(
                "{} runs only the tool calls of MCP clients (`deskhand mcp`, /mcp); send the \
                 action itself, or a request in plain words",
                crate::mcp::ACTION
            ))));
        }
        skills.check(&name, &params).map_err(refused)
    };
    match entry {
        Entry::Delivered {
            parsed,
            body,
            known,
            queued_at,
        } => {
            let job = parsed.as_ref().map_err(|e| refused(e.clone()))?;
            // Signed dispatch: only paired devices' jobs run; replays and forgeries are refused.
            check_signature(store, job, body, known, queued_at)
                .await
                .map_err(|why| {
                    Denied::Refused(Refusal {
                        error: JobError::Signature(why.clone()),
                        reason: why,
                        job_id: None,
                    })
                })?;
            Ok(Admitted { skill: None })
        }
        Entry::Runnable(job) => Ok(Admitted {
            skill: Some(skill_of(job)?),
        }),
        Entry::RunNow(job) => {
            job.validate().map_err(refused)?;
            Ok(Admitted {
                skill: Some(skill_of(job)?),
            })
        }
        Entry::Submitted { job, self_signed } => {
            job.validate().map_err(refused)?;
            let devices = Devices::in_dir(store.private_dir());
            if !self_signed {
                devices
                    .verify(job, chrono::Utc::now())
                    .map_err(|e| refused(JobError::Signature(e.to_string())))?;
            }
            skill_of(job)?;
            let n = job.to_bytes().len();
            if n > MAX_JOB_BYTES {
                return Err(refused(JobError::TooLarge(n)));
            }
            if !self_signed
                && !store
                    .claim_nonce(signer_of(&job.origin), &job.nonce, &job.id.to_string())
                    .await
                    .map_err(Denied::Failed)?
            {
                return Err(refused(JobError::Signature(
                    SignatureError::Replayed(job.nonce.clone()).to_string(),
                )));
            }
            Ok(Admitted { skill: None })
        }
    }
}

/// Who may send this job: a paired, unrevoked device's signature over exactly this envelope;
/// a job new to this agent must also be recent and carry an unused nonce.
async fn check_signature(
    store: &Store,
    job: &Job,
    body: &[u8],
    known: Option<&JobRecord>,
    queued_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), String> {
    let devices = Devices::in_dir(store.private_dir());
    let id = job.id.to_string();
    let now = chrono::Utc::now();
    // Accepted before (submitted here, or a redelivery): the time window and the nonce were
    // checked then; the signature still binds this copy to what was accepted.
    if let Some(rec) = known {
        // Byte for byte the envelope that was verified when it was accepted.
        if rec.envelope == body {
            return Ok(());
        }
        return devices
            .verify_signature(job, now)
            .map_err(|e| e.to_string());
    }
    // Signed shortly before the hub took it in, and not older than a stream keeps jobs.
    let waited =
        chrono::Duration::from_std(crate::queue::MAX_WAIT).unwrap_or(chrono::TimeDelta::MAX);
    if let Some(at) = queued_at.filter(|at| *at <= now) {
        if now - job.created_at > waited {
            return Err(SignatureError::Stale(job.created_at).to_string());
        }
        devices.verify(job, at).map_err(|e| e.to_string())?;
    } else {
        devices.verify(job, now).map_err(|e| e.to_string())?;
    }
    match store
        .claim_nonce(signer_of(&job.origin), &job.nonce, &id)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(SignatureError::Replayed(job.nonce.clone()).to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Validate a job against the skills and enqueue it (used by the daemon and by `dispatch`).
pub async fn submit(
    store: &Store,
    queue: &Queue,
    skills: &Skills,
    mut job: Job,
) -> Result<String, AgentError> {
    // Submitted on this desktop (the CLI, the local API): signed with its own device key. A job
    // that arrives signed keeps its signature, which must then verify.
    let self_signed = job.signature.is_none();
    if self_signed {
        Devices::in_dir(store.private_dir())
            .local_key()
            .map_err(|e| AgentError::Job(JobError::Signature(e.to_string())))?
            .sign(&mut job);
    }
    admit(
        store,
        skills,
        Entry::Submitted {
            job: &job,
            self_signed,
        },
    )
    .await?;
    let (name, params) = job.resolved();
    store.audit().record(
        "job.received",
        Some(&job.id.to_string()),
        serde_json::json!({"skill": name, "origin": job.origin, "params": params}),
    );
    queue.submit(store, &job).await?;
    Ok(job.id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::devices::DeviceKey;
    use serde_json::json;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        skills: Skills,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        Fixture {
            _dir: dir,
            store,
            skills: Skills::builtin(),
        }
    }

    fn noop() -> Job {
        Job::new("noop", Map::new(), "phone")
    }

    /// A key for a device paired with the fixture's agent.
    fn paired(f: &Fixture) -> DeviceKey {
        let (_, secret) = Devices::in_dir(f.store.private_dir())
            .pair("phone")
            .unwrap();
        DeviceKey::parse(&secret).unwrap()
    }

    fn refusals(store: &Store) -> Vec<crate::audit::Entry> {
        let all = store.audit().read(None).unwrap();
        all.into_iter()
            .filter(|e| e.kind == "job.refused")
            .collect()
    }

    /// Admitting `entry` is refused with `code`, recorded exactly once, with the reason and code.
    async fn refused_once(f: &Fixture, entry: Entry<'_>, code: &str, says: &str) {
        let before = refusals(&f.store).len();
        let r = match admit(&f.store, &f.skills, entry).await {
            Err(Denied::Refused(r)) => r,
            Err(Denied::Failed(e)) => panic!("expected a refusal ({code}), the store failed: {e}"),
            Ok(_) => panic!("expected a refusal ({code}), it was admitted"),
        };
        assert_eq!(r.code(), code, "{}", r.reason);
        assert!(
            r.reason.contains(says),
            "{:?} does not say {says:?}",
            r.reason
        );
        let after = refusals(&f.store);
        assert_eq!(after.len(), before + 1, "one job.refused per refusal");
        let entry = after.last().unwrap();
        assert_eq!(entry.data["code"], code);
        assert_eq!(entry.data["reason"], r.reason.as_str());
        assert_eq!(entry.job, r.job_id);
    }

    /// A key no agent here paired.
    fn stranger() -> DeviceKey {
        DeviceKey::parse("dh1.dev-stranger.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap()
    }

    /// `job` signed with `key`.
    fn signed(key: &DeviceKey, mut job: Job) -> Job {
        key.sign(&mut job);
        job
    }

    /// What the queue hands over for `job`: the parsed envelope and its bytes.
    fn delivery(job: Job) -> (Result<Job, JobError>, Vec<u8>) {
        let body = job.to_bytes();
        (Ok(job), body)
    }

    /// The entry of a delivery new to this agent.
    fn delivered(d: &(Result<Job, JobError>, Vec<u8>)) -> Entry<'_> {
        Entry::Delivered {
            parsed: &d.0,
            body: &d.1,
            known: None,
            queued_at: None,
        }
    }

    fn submitted(job: &Job, self_signed: bool) -> Entry<'_> {
        Entry::Submitted { job, self_signed }
    }

    /// A job with the nonce of `first`, signed again: a replay.
    fn replay_of(key: &DeviceKey, first: &Job) -> Job {
        let mut again = noop();
        again.nonce = first.nonce.clone();
        signed(key, again)
    }

    #[tokio::test]
    async fn a_job_that_waited_in_the_hub_for_a_sleeping_desktop_still_runs_once() {
        let f = fixture();
        let key = paired(&f);
        let hours_ago = chrono::Utc::now() - chrono::Duration::hours(3);
        let mut job = noop();
        key.sign_at(&mut job, hours_ago);
        let d = delivery(job.clone());
        let queued = |at| Entry::Delivered {
            parsed: &d.0,
            body: &d.1,
            known: None,
            queued_at: Some(at),
        };
        // Without the hub's time it is stale; taken in by the hub a minute after signing, it runs.
        refused_once(&f, delivered(&d), "bad_signature", "").await;
        let r = admit(
            &f.store,
            &f.skills,
            queued(hours_ago + chrono::Duration::minutes(1)),
        )
        .await;
        assert!(r.is_ok(), "{:?}", r.err());
        // Its nonce is spent: another envelope with it is a replay (the same job delivered
        // again passes here; the ledger runs it once).
        let mut replay = noop();
        replay.nonce = job.nonce.clone();
        key.sign_at(&mut replay, hours_ago);
        let replay = delivery(replay);
        let entry = Entry::Delivered {
            parsed: &replay.0,
            body: &replay.1,
            known: None,
            queued_at: Some(hours_ago + chrono::Duration::minutes(1)),
        };
        refused_once(&f, entry, "bad_signature", "").await;
        // Signed long before the hub took it in, or older than a stream keeps jobs: refused.
        let mut late = noop();
        key.sign_at(&mut late, hours_ago);
        let late = delivery(late);
        let entry = Entry::Delivered {
            parsed: &late.0,
            body: &late.1,
            known: None,
            queued_at: Some(hours_ago + chrono::Duration::minutes(30)),
        };
        refused_once(&f, entry, "bad_signature", "").await;
        let long_ago = chrono::Utc::now() - chrono::Duration::days(8);
        let mut old = noop();
        key.sign_at(&mut old, long_ago);
        let old = delivery(old);
        let entry = Entry::Delivered {
            parsed: &old.0,
            body: &old.1,
            known: None,
            queued_at: Some(long_ago),
        };
        refused_once(&f, entry, "bad_signature", "").await;
    }

    #[tokio::test]
    async fn every_refusal_of_a_delivery_is_audited_once_with_its_code() {
        let f = fixture();
        // Not a job at all (it still names one).
        let body = br#"{"id":"01JD5S8Q3K3W9Z6V4Y0M1T2R9X","skill":5}"#.to_vec();
        let malformed = (Job::from_bytes(&body), body);
        refused_once(&f, delivered(&malformed), "bad_request", "malformed").await;
        assert_eq!(
            refusals(&f.store)[0].job.as_deref(),
            Some("01JD5S8Q3K3W9Z6V4Y0M1T2R9X")
        );
        // Unsigned, then signed by a device this agent never paired.
        refused_once(&f, delivered(&delivery(noop())), "bad_signature", "").await;
        let forged = delivery(signed(&stranger(), noop()));
        refused_once(&f, delivered(&forged), "bad_signature", "").await;
        // A paired device's job is admitted once; its nonce again is a replay.
        let key = paired(&f);
        let first = signed(&key, noop());
        let before = refusals(&f.store).len();
        let admitted = admit(&f.store, &f.skills, delivered(&delivery(first.clone()))).await;
        assert!(admitted.is_ok(), "{:?}", admitted.err());
        assert_eq!(
            refusals(&f.store).len(),
            before,
            "admitted: nothing refused"
        );
        let replay = delivery(replay_of(&key, &first));
        refused_once(&f, delivered(&replay), "bad_signature", "").await;
        // Delivered and authentic, but the skill is not one this agent has.
        let unknown = Job::new("no.such.skill", Map::new(), "phone");
        refused_once(
            &f,
            Entry::Runnable(&unknown),
            "unknown_skill",
            "no.such.skill",
        )
        .await;
        let mut bad_params = noop();
        bad_params.params.insert("what".into(), json!(1));
        let r = admit(&f.store, &f.skills, Entry::Runnable(&bad_params)).await;
        assert!(r.is_err(), "a parameter noop does not take is refused");
    }

    #[tokio::test]
    async fn every_refusal_to_run_now_is_audited_once_with_its_code() {
        let f = fixture();
        let mut both = noop();
        both.text = Some("/noop".into());
        refused_once(&f, Entry::RunNow(&both), "invalid_job", "not both").await;
        let unknown = Job::new("no.such.skill", Map::new(), "cli");
        refused_once(
            &f,
            Entry::RunNow(&unknown),
            "unknown_skill",
            "no.such.skill",
        )
        .await;
        let ok = admit(&f.store, &f.skills, Entry::RunNow(&noop()))
            .await
            .unwrap();
        assert_eq!(ok.skill.map(|(def, _)| def.name), Some("noop".to_string()));
    }

    #[tokio::test]
    async fn every_refusal_of_a_submission_is_audited_once_with_its_code() {
        let f = fixture();
        let mut both = noop();
        both.text = Some("/noop".into());
        refused_once(&f, submitted(&both, true), "invalid_job", "not both").await;
        let unknown = Job::new("no.such.skill", Map::new(), "cli");
        refused_once(
            &f,
            submitted(&unknown, true),
            "unknown_skill",
            "no.such.skill",
        )
        .await;
        // Signed elsewhere: by a stranger, then a paired device twice with one nonce.
        let forged = signed(&stranger(), noop());
        refused_once(&f, submitted(&forged, false), "bad_signature", "").await;
        let key = paired(&f);
        let first = signed(&key, noop());
        admit(&f.store, &f.skills, submitted(&first, false))
            .await
            .unwrap();
        let replay = replay_of(&key, &first);
        refused_once(&f, submitted(&replay, false), "bad_signature", "replay").await;
    }

    #[tokio::test]
    async fn submit_records_a_refusal_once_and_enqueues_what_it_admits() {
        let f = fixture();
        let queue = Queue::open("embedded", &f.store, Default::default())
            .await
            .unwrap();
        let e = submit(
            &f.store,
            &queue,
            &f.skills,
            Job::new("no.such.skill", Map::new(), "cli"),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, AgentError::Job(JobError::UnknownSkill { .. })),
            "{e}"
        );
        assert_eq!(refusals(&f.store).len(), 1);
        let id = submit(&f.store, &queue, &f.skills, noop()).await.unwrap();
        assert_eq!(refusals(&f.store).len(), 1);
        let rec = f.store.get(&id).await.unwrap();
        assert_eq!(rec.state, crate::job::JobState::Queued);
        let d = queue
            .next(std::time::Duration::from_secs(5))
            .await
            .unwrap()
            .expect("the admitted job is on the queue");
        assert_eq!(Job::from_bytes(&d.body).unwrap().id.to_string(), id);
    }
}

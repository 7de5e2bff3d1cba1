//! Approvals: a consequential action the skill may not take on its own waits here until the
//! person approves or refuses it (CLI, HTTP API, phone page), or the timeout refuses it. They live
//! in the state database so any process can decide one: the CLI in another terminal, the daemon's
//! API; the waiting job polls.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    /// Waiting for the person.
    Pending,
    /// Go ahead.
    Approved,
    /// Do not.
    Refused,
    /// Nobody answered in time: refused.
    Expired,
}

impl ApprovalState {
    fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Refused => "refused",
            ApprovalState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> ApprovalState {
        match s {
            "approved" => ApprovalState::Approved,
            "refused" => ApprovalState::Refused,
            "expired" => ApprovalState::Expired,
            _ => ApprovalState::Pending,
        }
    }
}

/// One request for the person's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// ULID.
    pub id: String,
    /// The job that waits.
    pub job: String,
    /// The skill it runs.
    pub skill: String,
    /// `submit`, `send`, `overwrite`, `delete`, `external-write`.
    pub action: String,
    /// Where: the form's URL, the file, the recipient.
    pub target: String,
    /// What the person should see first: the filled fields, a screenshot's workspace path, the
    /// mail's text.
    pub preview: Value,
    /// Where it stands.
    pub state: ApprovalState,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
    /// When silence becomes a refusal.
    pub expires_at: DateTime<Utc>,
    /// Who decided (`cli`, `api`, `timeout`).
    pub decided_by: Option<String>,
}

/// Deciding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No such approval.
    #[error("no approval {0}; `deskhand approvals` lists the pending ones")]
    NotFound(String),
    /// A question waits for words, not a yes.
    #[error("approval {0} is a question: answer it with text (`deskhand approvals answer {0} \"…\"`), or refuse it")]
    NeedsAnswer(String),
    /// Only a question takes an answer.
    #[error("approval {0} is not a question: approve or refuse it")]
    NotAQuestion(String),
    /// Already decided.
    #[error("approval {id} is already {state}")]
    Decided {
        /// The approval.
        id: String,
        /// Its state.
        state: &'static str,
    },
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLS: &str =
    "id, job, skill, action, target, preview, state, created_at, expires_at, decided_by";

fn row(r: &Row<'_>) -> rusqlite::Result<Approval> {
    let ts = |s: String| {
        DateTime::parse_from_rfc3339(&s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    };
    Ok(Approval {
        id: r.get(0)?,
        job: r.get(1)?,
        skill: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        preview: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(Value::Null),
        state: ApprovalState::parse(&r.get::<_, String>(6)?),
        created_at: ts(r.get(7)?),
        expires_at: ts(r.get(8)?),
        decided_by: r.get(9)?,
    })
}

/// Ask. Audited as `approval.requested`.
pub async fn request(
    store: &Store,
    job: &str,
    skill: &str,
    action: &str,
    target: &str,
    preview: Value,
    timeout: Duration,
) -> Result<Approval, StoreError> {
    let now = Utc::now();
    // Stored and shown on the phone: no passwords or tokens in it.
    let preview = crate::audit::redact(preview);
    let a = Approval {
        id: ulid::Ulid::new().to_string(),
        job: job.to_string(),
        skill: skill.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        preview,
        state: ApprovalState::Pending,
        created_at: now,
        expires_at: now + chrono::Duration::from_std(timeout).unwrap_or_default(),
        decided_by: None,
    };
    let x = a.clone();
    store
        .with(move |c| {
            c.execute(
                &format!("INSERT INTO approvals ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)"),
                params![
                    x.id,
                    x.job,
                    x.skill,
                    x.action,
                    x.target,
                    x.preview.to_string(),
                    x.state.as_str(),
                    x.created_at.to_rfc3339(),
                    x.expires_at.to_rfc3339()
                ],
            )
            .map(|_| ())
        })
        .await?;
    store.audit().record(
        "approval.requested",
        Some(job),
        json!({"approval": a.id, "action": a.action, "target": a.target, "preview": a.preview,
               "expires_at": a.expires_at.to_rfc3339()}),
    );
    Ok(a)
}

/// One approval.
pub async fn get(store: &Store, id: &str) -> Result<Approval, ApprovalError> {
    let idc = id.to_string();
    store
        .with(move |c| {
            c.query_row(
                &format!("SELECT {COLS} FROM approvals WHERE id = ?1"),
                params![idc],
                row,
            )
            .optional()
        })
        .await?
        .ok_or_else(|| ApprovalError::NotFound(id.to_string()))
}

/// Newest first; only the pending ones unless `all`.
pub async fn list(store: &Store, all: bool) -> Result<Vec<Approval>, StoreError> {
    expire_overdue(store).await?;
    store
        .with(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLS} FROM approvals {} ORDER BY id DESC LIMIT 200",
                if all { "" } else { "WHERE state = 'pending'" }
            ))?;
            let rows = st.query_map([], row)?;
            rows.collect()
        })
        .await
}

/// The action of an approval that is a question to the person (`ask_person`): it is answered
/// with words ([`answer`]), or refused.
pub const QUESTION: &str = "question";

/// Answer a pending question with the person's words. Audited as `approval.decided` with the
/// answer's length, not its text (it may be anything the person typed).
pub async fn answer(
    store: &Store,
    id: &str,
    text: &str,
    by: &str,
) -> Result<Approval, ApprovalError> {
    expire_overdue(store).await?;
    if get(store, id).await?.action != QUESTION {
        return Err(ApprovalError::NotAQuestion(id.to_string()));
    }
    let (idc, byc, textc) = (id.to_string(), by.to_string(), text.to_string());
    let changed = store
        .with(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE approvals SET state = 'approved', decided_by = ?2, decided_at = ?3 WHERE id = ?1 AND state = 'pending'",
                params![idc, byc, Utc::now().to_rfc3339()],
            )?;
            if n == 1 {
                tx.execute(
                    "INSERT OR REPLACE INTO answers (approval, text) VALUES (?1, ?2)",
                    params![idc, textc],
                )?;
            }
            tx.commit()?;
            Ok(n)
        })
        .await?;
    let a = decided(store, id, changed).await?;
    store.audit().record(
        "approval.decided",
        Some(&a.job),
        json!({"approval": a.id, "action": a.action, "decision": "answered",
               "answer_chars": text.chars().count(), "by": by}),
    );
    Ok(a)
}

/// The approval after an update that changed `changed` rows: none means it was decided already.
async fn decided(store: &Store, id: &str, changed: usize) -> Result<Approval, ApprovalError> {
    let a = get(store, id).await?;
    if changed == 0 {
        return Err(ApprovalError::Decided {
            id: id.to_string(),
            state: a.state.as_str(),
        });
    }
    Ok(a)
}

/// The person's answer to a question, once given.
pub async fn answer_of(store: &Store, id: &str) -> Result<Option<String>, StoreError> {
    let idc = id.to_string();
    store
        .with(move |c| {
            c.query_row(
                "SELECT text FROM answers WHERE approval = ?1",
                params![idc],
                |r| r.get(0),
            )
            .optional()
        })
        .await
}

/// Approve or refuse a pending approval. Audited as `approval.decided`.
pub async fn decide(
    store: &Store,
    id: &str,
    approve: bool,
    by: &str,
) -> Result<Approval, ApprovalError> {
    expire_overdue(store).await?;
    if approve && get(store, id).await?.action == QUESTION {
        return Err(ApprovalError::NeedsAnswer(id.to_string()));
    }
    let state = if approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Refused
    };
    let (idc, byc) = (id.to_string(), by.to_string());
    let changed = store
        .with(move |c| {
            c.execute(
                "UPDATE approvals SET state = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1 AND state = 'pending'",
                params![idc, state.as_str(), byc, Utc::now().to_rfc3339()],
            )
        })
        .await?;
    let a = decided(store, id, changed).await?;
    store.audit().record(
        "approval.decided",
        Some(&a.job),
        json!({"approval": a.id, "action": a.action, "target": a.target, "decision": a.state.as_str(), "by": by}),
    );
    Ok(a)
}

/// Mark pending approvals past their time as expired (a refusal), auditing each.
async fn expire_overdue(store: &Store) -> Result<(), StoreError> {
    let now = Utc::now().to_rfc3339();
    let expired: Vec<(String, String, String, String)> = store
        .with(move |c| {
            let mut st = c.prepare(
                "UPDATE approvals SET state = 'expired', decided_by = 'timeout', decided_at = ?1
                 WHERE state = 'pending' AND expires_at <= ?1 RETURNING id, job, action, target",
            )?;
            let rows = st.query_map(params![now], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect()
        })
        .await?;
    for (id, job, action, target) in expired {
        store.audit().record(
            "approval.decided",
            Some(&job),
            json!({"approval": id, "action": action, "target": target, "decision": "expired", "by": "timeout"}),
        );
    }
    Ok(())
}

/// Wait until the approval is decided, expires, or the job is cancelled (which refuses it).
pub async fn wait(
    store: &Store,
    id: &str,
    cancel: &CancellationToken,
) -> Result<ApprovalState, ApprovalError> {
    loop {
        let a = get(store, id).await?;
        if a.state != ApprovalState::Pending {
            return Ok(a.state);
        }
        if Utc::now() >= a.expires_at {
            expire_overdue(store).await?;
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = decide(store, id, false, "cancelled").await;
                return Ok(ApprovalState::Refused);
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decided_once_and_silence_refuses() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let a = request(
            &store,
            "j1",
            "s",
            "submit",
            "http://x/form",
            json!({"fields": 2}),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(list(&store, false).await.unwrap().len(), 1);
        let done = decide(&store, &a.id, true, "cli").await.unwrap();
        assert_eq!(done.state, ApprovalState::Approved);
        let again = decide(&store, &a.id, false, "api").await.unwrap_err();
        assert!(again.to_string().contains("already approved"), "{again}");
        assert!(list(&store, false).await.unwrap().is_empty());

        let b = request(
            &store,
            "j2",
            "s",
            "submit",
            "http://x/form",
            json!({}),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
        let state = wait(&store, &b.id, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(state, ApprovalState::Expired);
        let kinds: Vec<String> = store
            .audit()
            .read(None)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| *k == "approval.decided").count(),
            2,
            "{kinds:?}"
        );
        assert!(matches!(
            decide(&store, "nope", true, "cli").await,
            Err(ApprovalError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_question_takes_words_once_and_an_approval_takes_none() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let q = request(
            &store,
            "j1",
            "agent.ask",
            QUESTION,
            "Which day?",
            json!({}),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert!(matches!(
            decide(&store, &q.id, true, "cli").await,
            Err(ApprovalError::NeedsAnswer(_))
        ));
        answer(&store, &q.id, "Tuesday, secret-ish words", "api")
            .await
            .unwrap();
        assert_eq!(
            get(&store, &q.id).await.unwrap().state,
            ApprovalState::Approved
        );
        assert_eq!(
            answer_of(&store, &q.id).await.unwrap().as_deref(),
            Some("Tuesday, secret-ish words")
        );
        assert!(matches!(
            answer(&store, &q.id, "Wednesday", "cli").await,
            Err(ApprovalError::Decided { .. })
        ));
        assert_eq!(
            answer_of(&store, &q.id).await.unwrap().as_deref(),
            Some("Tuesday, secret-ish words")
        );
        // The audit has the length of the answer, not its words.
        let audit = std::fs::read_to_string(d.path().join(".deskhand/audit.jsonl")).unwrap();
        assert!(
            audit.contains("\"answer_chars\":25") && !audit.contains("secret-ish"),
            "{audit}"
        );
        let sub = request(
            &store,
            "j2",
            "s",
            "submit",
            "http://x/form",
            json!({}),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert!(matches!(
            answer(&store, &sub.id, "yes", "cli").await,
            Err(ApprovalError::NotAQuestion(_))
        ));
    }
}

//! `gmail.send`: a plain-text mail from the person's Gmail account.
//!
//! Sending is consequential and cannot be undone, so the person approves each mail (recipients,
//! subject and the whole text, as it will leave) unless the skill may `send` without asking. A job
//! sends a given mail at most once: a redelivered job finds its earlier send and reports it.

use deskhand_connectors::Provider;
use lettre::message::header::{Cc, ContentType, To};
use lettre::message::{Mailbox, Mailboxes, Message};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::args::{Line, Text};
use super::Account;
use crate::guard::{Access, Guard};
use crate::runner::{StepCtx, StepError};

/// Scopes that allow `messages.send` (the narrowest first).
const SEND_SCOPES: [&str; 4] = [
    "https://www.googleapis.com/auth/gmail.send",
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://mail.google.com/",
];

/// Recipients from `Name <a@b.c>, d@e.f`; an empty list is an error for `to`.
fn recipients(field: &str, text: &str, required: bool) -> Result<Option<Mailboxes>, StepError> {
    if text.trim().is_empty() {
        return if required {
            Err(StepError::Fatal(format!("{field}= names no recipient")))
        } else {
            Ok(None)
        };
    }
    text.parse::<Mailboxes>().map(Some).map_err(|e| {
        StepError::Fatal(format!(
            "{field}={text:?} is not a list of addresses ({e}); write them as \"Name <a@b.c>, d@e.f\""
        ))
    })
}

/// The mail as Gmail takes it: RFC 5322, plain text, headers encoded by `lettre` (so a newline in
/// a subject taken from elsewhere cannot add a header).
fn compose(
    from: Mailbox,
    to: &Mailboxes,
    cc: Option<&Mailboxes>,
    subject: &str,
    body: String,
) -> Result<Vec<u8>, StepError> {
    let mut builder = Message::builder()
        .from(from)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .header(To::from(to.clone()));
    if let Some(cc) = cc {
        builder = builder.header(Cc::from(cc.clone()));
    }
    builder
        .body(body)
        .map(|m| m.formatted())
        .map_err(|e| StepError::Fatal(format!("could not compose the mail: {e}")))
}

/// The account's Gmail client and address, once the connection is known to hold one of
/// `scopes` (else the `deskhand connect` that grants the first, for what it may not `do_what`).
pub(super) async fn sender(
    g: &Guard,
    id: &deskhand_connectors::ConnectionId,
    scopes: &[&str],
    do_what: &str,
) -> Result<(deskhand_connectors::gmail::Gmail, Mailbox), StepError> {
    let hub = g.connector("gmail", Access::Write).await?;
    if let Ok(Some(info)) = hub.cache().connection(id) {
        if !info.scopes.iter().any(|s| scopes.contains(&s.as_str())) {
            return Err(StepError::Fatal(format!(
                "{id} may read mail but not {do_what}: run `deskhand connect google --scope {}` \
                 and accept, then retry this job",
                scopes[0]
            )));
        }
    }
    let gmail = hub.gmail(id).await?;
    let (from, _) = gmail.profile().await?;
    let from: Mailbox = from.parse().map_err(|e| {
        StepError::Fatal(format!("the account's address {from:?} is not usable: {e}"))
    })?;
    Ok((gmail, from))
}

/// `gmail.send`'s arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct SendArgs {
    /// Recipients, comma-separated: "Grace Hopper <grace@example.com>, ada@example.com".
    to: Line,
    /// Copy recipients, comma-separated.
    cc: Option<Line>,
    /// The subject.
    subject: Line,
    /// The text (several lines).
    body: Text,
    #[serde(flatten)]
    account: Account,
}

/// Send the mail the arguments describe.
pub(super) async fn send(g: Guard, a: SendArgs, _: StepCtx) -> Result<Value, StepError> {
    let (to, cc, subject, body) = (
        a.to.0,
        a.cc.map(|c| c.0).unwrap_or_default(),
        a.subject.0,
        a.body.0,
    );
    let to_list = recipients("to", &to, true)?.unwrap_or_default();
    let cc_list = recipients("cc", &cc, false)?;
    let mut digest = Sha256::new();
    for part in [&to, &cc, &subject, &body] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let mail_key = format!("{:x}", digest.finalize());

    let id = a.account.of(Provider::Google);
    let (gmail, from) = sender(&g, &id, &SEND_SCOPES, "send it").await?;
    let preview = json!({"from": from.to_string(), "to": to_list.to_string(),
           "cc": cc_list.as_ref().map(|c| c.to_string()),
           "subject": subject, "text": body});
    let target = to_list.to_string();
    // A job sends a given mail at most once: a redelivery gets the first send's result.
    g.external("send", &target, preview, Some(&mail_key), |fx| async move {
        let text_sha256 = format!("{:x}", Sha256::digest(body.as_bytes()));
        let raw = compose(from, &to_list, cc_list.as_ref(), &subject, body)?;
        let sent = gmail.send(&raw).await?;
        // The text itself is in the approval's entry (what the person was shown); this one ties
        // the mail that left to it by its hash.
        fx.done(
            "mail.sent",
            json!({"to": to_list.to_string(), "cc": cc_list.map(|c| c.to_string()),
                   "subject": subject, "id": sent.id, "bytes": raw.len(),
                   "text_sha256": text_sha256}),
        );
        Ok(
            json!({"sent": sent.id, "thread": sent.thread_id, "to": to_list.to_string(),
                  "subject": subject}),
        )
    })
    .await
}

/// Scopes that allow `drafts.create` (a send-only grant does not).
pub(super) const DRAFT_SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://mail.google.com/",
];

/// Save a new plain-text mail as a draft (not a reply), journaled so undo deletes it: its id.
pub(super) async fn save_draft(
    g: &Guard,
    gmail: &deskhand_connectors::gmail::Gmail,
    connection: &deskhand_connectors::ConnectionId,
    from: Mailbox,
    to: &Mailboxes,
    subject: &str,
    body: String,
) -> Result<String, StepError> {
    let raw = compose(from, to, None, subject, body)?;
    let made = gmail.create_draft(&raw, None).await?;
    g.created_outside(
        "gmail.draft",
        &connection.to_string(),
        &made.id,
        json!({"draft": made.id, "to": to.to_string(), "subject": subject, "bytes": raw.len()}),
    )?;
    Ok(made.id)
}

/// `gmail.draft`'s arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct DraftArgs {
    /// Recipients, comma-separated; for a reply, by default whoever the mail replied to came
    /// from (its Reply-To, else its From).
    #[serde(default)]
    to: Option<Line>,
    /// Copy recipients, comma-separated.
    cc: Option<Line>,
    /// The subject; for a reply, by default "Re: " and the original's.
    #[serde(default)]
    subject: Option<Line>,
    /// The text (several lines).
    body: Text,
    /// The Gmail message id (from `gmail.search`) this draft answers: it goes into that
    /// thread, with In-Reply-To and References set.
    #[serde(default)]
    reply_to: Option<Line>,
    #[serde(flatten)]
    account: Account,
}

/// A header of a message, by name.
fn header_of(m: &deskhand_connectors::gmail::MessageResource, name: &str) -> Option<String> {
    m.payload
        .as_ref()?
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.trim().to_string())
}

/// Save a mail as a Gmail draft (a reply in its thread when `reply_to` names one). Nothing
/// leaves, so nothing is asked; the draft is audited and `deskhand undo` deletes it.
pub(super) async fn draft(g: Guard, a: DraftArgs, _: StepCtx) -> Result<Value, StepError> {
    let id = a.account.of(Provider::Google);
    let (gmail, from) = sender(&g, &id, &DRAFT_SCOPES, "write drafts").await?;
    let original = match &a.reply_to {
        Some(m) => Some(
            gmail
                .get(m.as_str(), deskhand_connectors::gmail::Format::Metadata)
                .await?,
        ),
        None => None,
    };
    let h = |name: &str| original.as_ref().and_then(|m| header_of(m, name));
    let to = match (&a.to, &original) {
        (Some(t), _) if !t.0.trim().is_empty() => t.0.clone(),
        (_, Some(_)) => h("Reply-To").or_else(|| h("From")).unwrap_or_default(),
        _ => String::new(),
    };
    let to_list = recipients("to", &to, true)?.unwrap_or_default();
    let cc_list = recipients("cc", &a.cc.map(|c| c.0).unwrap_or_default(), false)?;
    let subject = match (&a.subject, h("Subject")) {
        (Some(s), _) if !s.0.trim().is_empty() => s.0.clone(),
        (_, Some(orig)) if orig.to_ascii_lowercase().starts_with("re:") => orig,
        (_, Some(orig)) => format!("Re: {orig}"),
        _ => {
            return Err(StepError::Invalid(
                "gmail.draft needs a subject (or reply_to, to answer a mail)".into(),
            ))
        }
    };
    let mut builder = Message::builder()
        .from(from)
        .subject(subject.as_str())
        .header(ContentType::TEXT_PLAIN)
        .header(To::from(to_list.clone()));
    if let Some(cc) = &cc_list {
        builder = builder.header(Cc::from(cc.clone()));
    }
    // A reply names the message it answers and the chain before it (RFC 5322 §3.6.4).
    if let Some(mid) = h("Message-ID") {
        let refs = match h("References") {
            Some(r) if !r.is_empty() => format!("{r} {mid}"),
            _ => mid.clone(),
        };
        builder = builder.in_reply_to(mid).references(refs);
    }
    let raw = builder
        .body(a.body.0)
        .map(|m| m.formatted())
        .map_err(|e| StepError::Fatal(format!("could not compose the draft: {e}")))?;
    let thread = original.as_ref().map(|m| m.thread_id.as_str());
    let made = gmail.create_draft(&raw, thread).await?;
    g.created_outside(
        "gmail.draft",
        &id.to_string(),
        &made.id,
        json!({"draft": made.id, "thread": made.message.thread_id, "to": to_list.to_string(),
               "subject": subject, "bytes": raw.len()}),
    )?;
    Ok(
        json!({"draft": made.id, "thread": made.message.thread_id, "to": to_list.to_string(),
              "subject": subject}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_parsed_and_bad_ones_explained() {
        let list = recipients(
            "to",
            "Grace Hopper <grace@example.com>, ada@example.com",
            true,
        )
        .unwrap()
        .unwrap();
        let addrs: Vec<String> = list.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(addrs, ["grace@example.com", "ada@example.com"]);
        assert!(recipients("cc", "  ", false).unwrap().is_none());
        let Err(StepError::Fatal(e)) = recipients("to", "", true) else {
            panic!("an empty to= must be refused");
        };
        assert!(e.contains("no recipient"), "{e}");
        let Err(StepError::Fatal(e)) = recipients("to", "grace at example", true) else {
            panic!("a bad address must be refused");
        };
        assert!(e.contains("Name <a@b.c>"), "{e}");
    }

    #[test]
    fn a_newline_in_the_subject_adds_no_header() {
        let to = recipients("to", "grace@example.com", true)
            .unwrap()
            .unwrap();
        let raw = compose(
            "ada@example.com".parse().unwrap(),
            &to,
            None,
            "Hello\r\nBcc: evil@example.com",
            "Text".into(),
        )
        .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
            "{raw}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert!(parsed.bcc().is_none(), "{raw}");
        assert_eq!(
            parsed.to().unwrap().first().unwrap().address(),
            Some("grace@example.com")
        );
    }
}

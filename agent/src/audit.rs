//! The audit log: append-only JSON lines in `.deskhand/audit.jsonl`, each entry carrying the
//! SHA-256 of the one before, so an edited, deleted, reordered or forged entry breaks the chain
//! and `deskhand audit verify` names it. Several processes (the daemon, `deskhand /skill`) append
//! to one file: each append takes an exclusive file lock, reads the last entry (or, when nobody
//! else wrote since, remembers it), and writes the next. Secrets never get in: values under secret-looking keys are replaced before hashing.
//!
//! A hash chain alone cannot see its own end cut off. So after every append the agent signs the
//! log's head (last entry number and hash) with its key and keeps it beside the log
//! (`audit.head`). `verify` fails when the log is shorter than the head, diverges from it, is
//! missing or empty while a head exists, or has a gap. An append that finds the end damaged does
//! not continue silently: the damaged file is kept (`audit.damaged-<time>.jsonl`) and a new
//! segment starts whose first entry, `audit.damaged`, records what was found. What this does not
//! stop (someone holding the agent's key) is in `docs/ARCHITECTURE.md`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries not fsynced on their own (see [`AuditLog::append`]).
const LIFECYCLE: &[&str] = &["job.received", "job.started", "step.started", "job.ended"];

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// What happened: `job.received`, `job.refused`, `job.started`, `step.started`,
    /// `job.ended`, `file.written`, …
    pub kind: String,
    /// The job it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Details (redacted).
    #[serde(default)]
    pub data: Value,
    /// The previous entry's hash.
    pub prev: String,
    /// SHA-256 of this entry without `hash`.
    pub hash: String,
}

impl Entry {
    fn digest(&self) -> String {
        let body = serde_json::json!({
            "seq": self.seq, "at": self.at, "kind": self.kind, "job": self.job,
            "data": self.data, "prev": self.prev,
        });
        hex(&Sha256::digest(body.to_string().as_bytes()))
    }
}

/// Audit failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// File system.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The chain is broken.
    #[error("audit log broken at line {line} (entry {seq}): {why}")]
    Broken {
        /// 1-based line.
        line: usize,
        /// The entry's seq as written (0 if unreadable).
        seq: u64,
        /// What is wrong.
        why: String,
    },
    /// The log's end does not match its signed head (cut, emptied, deleted, rewritten, or
    /// written past); the damaged file is kept by the agent's next entry.
    #[error("audit log damaged at its end: {why}")]
    End {
        /// What is wrong.
        why: String,
    },
}

/// Every this-many entries, one is a checkpoint signed with the agent's key.
pub const CHECKPOINT_EVERY: u64 = 100;

/// The kind of a segment's first entry after damage was found.
pub const DAMAGED: &str = "audit.damaged";

/// The head file's fixed length (its JSON padded with spaces and a newline).
const HEAD_LEN: usize = 512;

/// The kind of the entry that records a last entry found without a signed head.
pub const UNSIGNED: &str = "audit.unsigned";

/// The signed head: the number and hash of the log's last entry, sealed with a key derived from
/// the agent's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The last entry's number.
    pub seq: u64,
    /// The last entry's hash.
    pub hash: String,
    /// HMAC-SHA256 over `deskhand-audit-head:{seq}:{hash}`, hex. A MAC rather than the
    /// checkpoints' Ed25519 signature: it is made after every append (Ed25519 cost a third of a
    /// no-op job's throughput) and only this agent, holding the key, ever checks it.
    pub mac: String,
}

impl Head {
    fn message(seq: u64, hash: &str) -> String {
        format!("deskhand-audit-head:{seq}:{hash}")
    }
}

/// What an append found at the end of the log, when it is not the signed head.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// What is wrong, in words.
    pub why: String,
    /// The signed head, if there was a valid one.
    pub head: Option<(u64, String)>,
    /// The last entry found, if any.
    pub found: Option<(u64, String)>,
    /// The log is whole but its end is not covered by a head: only the last entry is past the
    /// head, chained onto it (what a crash between writing an entry and signing the head
    /// leaves), or there is no head at all (a log from before signed heads). Recorded in an
    /// `audit.unsigned` entry and continued from, not set aside.
    pub unsigned_tail: bool,
}

/// The log of a workspace.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    every: u64,
}

impl AuditLog {
    /// The log in `<workspace>/.deskhand/audit.jsonl`.
    pub fn new(workspace: &Path) -> AuditLog {
        AuditLog::at(workspace.join(".deskhand/audit.jsonl"))
    }

    /// A log at a given file.
    pub fn at(path: PathBuf) -> AuditLog {
        AuditLog {
            path,
            every: CHECKPOINT_EVERY,
        }
    }

    /// Checkpoints every `n` entries instead (tests).
    pub fn with_checkpoints_every(mut self, n: u64) -> AuditLog {
        self.every = n.max(2);
        self
    }

    /// The agent's audit signing key, beside the log (made on first use, mode 0600). Someone who
    /// rewrites the log and recomputes every hash still cannot sign its checkpoints without it.
    fn key(&self) -> Result<ed25519_dalek::SigningKey, AuditError> {
        static KEYS: LazyLock<Mutex<HashMap<PathBuf, ed25519_dalek::SigningKey>>> =
            LazyLock::new(Default::default);
        let p = self.path.with_file_name("agent.key");
        if let Some(k) = KEYS.lock().unwrap_or_else(|e| e.into_inner()).get(&p) {
            return Ok(k.clone());
        }
        let k = self.load_key()?;
        KEYS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p, k.clone());
        Ok(k)
    }

    fn load_key(&self) -> Result<ed25519_dalek::SigningKey, AuditError> {
        let p = self.path.with_file_name("agent.key");
        if let Ok(b) = std::fs::read(&p) {
            if let Ok(seed) = <[u8; 32]>::try_from(b.as_slice()) {
                return Ok(ed25519_dalek::SigningKey::from_bytes(&seed));
            }
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| self.io(std::io::Error::other(e.to_string())))?;
        use std::os::unix::fs::OpenOptionsExt;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
        {
            Ok(mut f) => {
                f.write_all(&seed).map_err(|e| self.io(e))?;
                f.sync_all().map_err(|e| self.io(e))?;
                Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            // Another process made it a moment ago: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let b = std::fs::read(&p).map_err(|e| self.io(e))?;
                <[u8; 32]>::try_from(b.as_slice())
                    .map(|seed| ed25519_dalek::SigningKey::from_bytes(&seed))
                    .map_err(|_| {
                        self.io(std::io::Error::other(format!(
                            "{} is not an agent key (32 bytes)",
                            p.display()
                        )))
                    })
            }
            Err(e) => Err(self.io(e)),
        }
    }

    /// The checkpoint entry's data: the agent's public key and its signature over the hash of
    /// everything before.
    fn checkpoint(&self, seq: u64, prev: &str) -> Result<Value, AuditError> {
        use ed25519_dalek::Signer;
        let key = self.key()?;
        let sig = key.sign(format!("{seq}:{prev}").as_bytes());
        Ok(serde_json::json!({
            "covers": seq - 1,
            "public_key": hex(key.verifying_key().as_bytes()),
            "signature": hex(&sig.to_bytes()),
        }))
    }

    /// Where the signed head is kept.
    pub fn head_path(&self) -> PathBuf {
        self.path.with_extension("head")
    }

    /// The signed head, if one was written; an unreadable one is an error.
    pub fn head(&self) -> Result<Option<Head>, String> {
        match std::fs::read(self.head_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|_| "the signed head (audit.head) is unreadable".to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("the signed head (audit.head) cannot be read: {e}")),
        }
    }

    /// The head's MAC key: derived from the agent's signing key, so there is one secret to keep.
    fn head_mac(&self) -> Result<hmac::Hmac<Sha256>, AuditError> {
        use hmac::Mac;
        let derived = Sha256::new()
            .chain_update(b"deskhand-audit-head-key:")
            .chain_update(self.key()?.to_bytes())
            .finalize();
        // HMAC takes a key of any length; this cannot fail.
        Ok(hmac::Hmac::<Sha256>::new_from_slice(&derived).expect("HMAC takes any key length"))
    }

    /// Is `head` sealed by this agent's key?
    fn head_signed(&self, head: &Head) -> Result<(), String> {
        use hmac::Mac;
        let mac = unhex(&head.mac).ok_or("the signed head's MAC is unreadable")?;
        self.head_mac()
            .map_err(|e| e.to_string())?
            .chain_update(Head::message(head.seq, &head.hash).as_bytes())
            .verify_slice(&mac)
            .map_err(|_| "the head (audit.head) is not signed by this agent's key".to_string())
    }

    /// Sign and store the head, in place: one fixed-size write at offset 0 under the log's lock.
    /// Not a temporary file renamed over the old head: on ext4 that rename forces the new file's
    /// data to disk (`auto_da_alloc`), which cost more than everything else in an append (no-op
    /// jobs: ~600/s instead of ~9,000/s). A process killed mid-append cannot tear a finished
    /// `pwrite`; a power cut can, and is then reported as damage, like the unsynced entries it
    /// may have lost.
    fn write_head(&self, seq: u64, hash: &str, durable: bool) -> Result<(), AuditError> {
        use hmac::Mac;
        use std::os::unix::fs::{FileExt, OpenOptionsExt};
        let mac = self
            .head_mac()?
            .chain_update(Head::message(seq, hash).as_bytes())
            .finalize()
            .into_bytes();
        let head = Head {
            seq,
            hash: hash.to_string(),
            mac: hex(&mac),
        };
        let mut bytes = serde_json::to_vec(&head).unwrap_or_default();
        // Always the same length, so a shorter head never leaves the end of a longer one behind.
        bytes.resize(HEAD_LEN - 1, b' ');
        bytes.push(b'\n');
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.head_path())
            .map_err(|e| self.io(e))?;
        f.write_all_at(&bytes, 0).map_err(|e| self.io(e))?;
        if f.metadata().map_err(|e| self.io(e))?.len() != HEAD_LEN as u64 {
            f.set_len(HEAD_LEN as u64).map_err(|e| self.io(e))?;
        }
        if durable {
            f.sync_data().map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// Does the log's end (its last entry, or none) match the signed head?
    fn check_end(&self, last: Option<&Entry>) -> Result<(), Damage> {
        let found = last.map(|e| (e.seq, e.hash.clone()));
        let damage = |why: String, head: Option<&Head>| Damage {
            why,
            head: head.map(|h| (h.seq, h.hash.clone())),
            found: found.clone(),
            unsigned_tail: false,
        };
        let head = self.head().map_err(|why| damage(why, None))?;
        let Some(head) = head else {
            return match last {
                None => Ok(()),
                // Every log written before signed heads existed looks like this: continue from
                // it (saying so in the log) rather than call every upgraded log damaged.
                Some(e) => Err(Damage {
                    unsigned_tail: true,
                    ..damage(
                        format!("the log has {} entries but no signed head: it was written by a Deskhand from before signed heads, or audit.head was deleted; those entries are covered by their hash chain and checkpoints only", e.seq),
                        None,
                    )
                }),
            };
        };
        self.head_signed(&head).map_err(|why| damage(why, None))?;
        match last {
            None => Err(damage(
                format!(
                    "the log is missing or empty, but the signed head records {} entries",
                    head.seq
                ),
                Some(&head),
            )),
            Some(e) if e.seq < head.seq => Err(damage(
                format!(
                    "the log ends at entry {}, but the signed head records {}: entries {}..{} were cut off",
                    e.seq,
                    head.seq,
                    e.seq + 1,
                    head.seq
                ),
                Some(&head),
            )),
            Some(e) if e.seq == head.seq + 1 && e.prev == head.hash => Err(Damage {
                unsigned_tail: true,
                ..damage(
                    format!(
                        "entry {} follows the signed head (entry {}) but was never signed: the agent stopped between writing it and signing (a crash or kill), or it was appended outside Deskhand; the agent's next entry records this",
                        e.seq, head.seq
                    ),
                    Some(&head),
                )
            }),
            Some(e) if e.seq > head.seq => Err(damage(
                format!(
                    "entries {}..{} come after the signed head (entry {}): they were written outside Deskhand",
                    head.seq + 1,
                    e.seq,
                    head.seq
                ),
                Some(&head),
            )),
            Some(e) if e.hash != head.hash => Err(damage(
                format!(
                    "entry {} is not the one the signed head records: the log's end was rewritten",
                    e.seq
                ),
                Some(&head),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Keep a damaged log for inspection: renamed beside it. The new name, if there was a file.
    fn set_aside(&self) -> Result<Option<PathBuf>, AuditError> {
        // An empty file (emptied, or just created by this append) holds nothing to inspect.
        match std::fs::metadata(&self.path) {
            Err(_) => return Ok(None),
            Ok(m) if m.len() == 0 => {
                std::fs::remove_file(&self.path).map_err(|e| self.io(e))?;
                return Ok(None);
            }
            Ok(_) => {}
        }
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let kept = self
            .path
            .with_file_name(format!("audit.damaged-{stamp}.jsonl"));
        std::fs::rename(&self.path, &kept).map_err(|e| self.io(e))?;
        Ok(Some(kept))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Append an entry (data redacted first). Returns it.
    pub fn append(&self, kind: &str, job: Option<&str>, data: Value) -> Result<Entry, AuditError> {
        let data = redact(data);
        // One appender per process at a time (the tail cache), and one across processes (the lock).
        let tail = tail_of(&self.path);
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        let open = || {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
        };
        let mut f = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(d) = self.path.parent() {
                    std::fs::create_dir_all(d).map_err(|e| self.io(e))?;
                }
                open()
            }
            r => r,
        }
        .map_err(|e| self.io(e))?;
        // Released when `f` closes.
        f.lock().map_err(|e| self.io(e))?;
        let meta = f.metadata().map_err(|e| self.io(e))?;
        let mut here = (meta.ino(), meta.len());
        let mut out = Vec::new();
        let mut unsigned = None;
        // The last entry is known if the file is the one this process last wrote and nobody has
        // appended since; otherwise read it from the file and hold it against the signed head.
        let (mut seq, mut prev) = match &tail.last {
            Some((at, seq, hash)) if *at == here => (seq + 1, hash.clone()),
            _ => {
                tighten(&self.path, &meta);
                let last = match last_entry(&mut f).map_err(|e| self.io(e))? {
                    None => Ok(None),
                    Some(Ok(e)) => Ok(Some(e)),
                    Some(Err(())) => Err(Damage {
                        why: "the log's last line is not a whole entry (cut mid-line, or written outside Deskhand)".into(),
                        head: self.head().ok().flatten().filter(|h| self.head_signed(h).is_ok()).map(|h| (h.seq, h.hash)),
                        found: None,
                        unsigned_tail: false,
                    }),
                };
                match last.and_then(|last| self.check_end(last.as_ref()).map(|()| last)) {
                    Ok(last) => match last {
                        Some(e) => (e.seq + 1, e.hash),
                        None => (1, GENESIS.to_string()),
                    },
                    Err(Damage {
                        why,
                        found: Some((seq, hash)),
                        unsigned_tail: true,
                        ..
                    }) => {
                        // Nothing was lost: say in the log that its end went unsigned, go on.
                        tracing::warn!(%why, "the audit log's end was not signed");
                        unsigned = Some(serde_json::json!({"entry": seq, "why": why}));
                        (seq + 1, hash)
                    }
                    Err(damage) => {
                        // Keep what is there, start a new segment that says what was found.
                        let kept = self.set_aside()?;
                        tracing::error!(why = %damage.why, kept = ?kept,
                            "the audit log was damaged; it is kept and a new segment begins");
                        drop(f);
                        f = open().map_err(|e| self.io(e))?;
                        f.lock().map_err(|e| self.io(e))?;
                        let meta = f.metadata().map_err(|e| self.io(e))?;
                        here = (meta.ino(), meta.len());
                        let (seq, prev) = match &damage.head {
                            Some((s, h)) => (s + 1, h.clone()),
                            None => (1, GENESIS.to_string()),
                        };
                        let mut d = Entry {
                            seq,
                            at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                            kind: DAMAGED.into(),
                            job: None,
                            data: serde_json::json!({
                                "why": damage.why,
                                "kept_as": kept.as_ref().and_then(|k| k.file_name()).map(|n| n.to_string_lossy().into_owned()),
                                "head": damage.head.as_ref().map(|(s, h)| serde_json::json!({"seq": s, "hash": h})),
                                "found": damage.found.as_ref().map(|(s, h)| serde_json::json!({"seq": s, "hash": h})),
                            }),
                            prev,
                            hash: String::new(),
                        };
                        d.hash = d.digest();
                        out.extend(serde_json::to_vec(&d).unwrap_or_default());
                        out.push(b'\n');
                        (d.seq + 1, d.hash)
                    }
                }
            }
        };
        if let Some(note) = unsigned {
            self.chain(&mut out, &mut seq, &mut prev, UNSIGNED, None, note)?;
        }
        let e = self.chain(&mut out, &mut seq, &mut prev, kind, job, data)?;
        let line = out;
        tail.last = None;
        f.write_all(&line).map_err(|e| self.io(e))?;
        // Side effects are made durable before the caller goes on; job lifecycle entries ride on
        // the next fsync (the job store keeps those durably itself), which keeps a no-op job's
        // audit cost to buffered appends.
        let durable = !LIFECYCLE.contains(&kind);
        if durable {
            f.sync_data().map_err(|e| self.io(e))?;
        }
        // Signed after the entry is written: a crash in between leaves the head one behind,
        // which the next append records (`audit.unsigned`) rather than signing over it unseen.
        self.write_head(e.seq, &e.hash, durable)?;
        tail.last = Some(((here.0, here.1 + line.len() as u64), e.seq, e.hash.clone()));
        Ok(e)
    }

    /// Add an entry at `seq` after `prev` to `out` (a signed checkpoint first when `seq` is a
    /// checkpoint slot), moving `seq` and `prev` past it.
    fn chain(
        &self,
        out: &mut Vec<u8>,
        seq: &mut u64,
        prev: &mut String,
        kind: &str,
        job: Option<&str>,
        data: Value,
    ) -> Result<Entry, AuditError> {
        // This slot is a checkpoint; the entry follows it.
        let checkpoint = if seq.is_multiple_of(self.every) {
            Some(self.checkpoint(*seq, prev)?)
        } else {
            None
        };
        let mut push = |kind: &str, job: Option<&str>, data: Value| {
            let mut e = Entry {
                seq: *seq,
                at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                kind: kind.to_string(),
                job: job.map(String::from),
                data,
                prev: std::mem::take(prev),
                hash: String::new(),
            };
            e.hash = e.digest();
            out.extend(serde_json::to_vec(&e).unwrap_or_default());
            out.push(b'\n');
            *seq += 1;
            prev.clone_from(&e.hash);
            e
        };
        if let Some(signed) = checkpoint {
            push("audit.checkpoint", None, signed);
        }
        Ok(push(kind, job, data))
    }

    /// Append, logging instead of failing (an audit failure must be seen, but the caller's work
    /// has already happened).
    pub fn record(&self, kind: &str, job: Option<&str>, data: Value) {
        if let Err(e) = self.append(kind, job, data) {
            tracing::error!(error = %e, kind, "could not write the audit log");
        }
    }

    /// Every entry of the current segment, checked: the first break is an error naming its line
    /// and entry; a log shorter than, or diverging from, its signed head is an error too. A
    /// segment that began after damage starts from its `audit.damaged` entry (see
    /// [`AuditLog::damage`] for what it recorded).
    pub fn verify(&self) -> Result<Vec<Entry>, AuditError> {
        let f = match File::open(&self.path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.io(e)),
        };
        // Shared with other readers, exclusive of appends: the log and its head are read as one
        // state, never an entry ahead of (or behind) the head being written.
        if let Some(f) = &f {
            f.lock_shared().map_err(|e| self.io(e))?;
        }
        let mut out: Vec<Entry> = Vec::new();
        let mut prev = GENESIS.to_string();
        let key = self.key()?.verifying_key();
        for (i, line) in f
            .as_ref()
            .map(|f| BufReader::new(f).lines())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let line = line.map_err(|e| self.io(e))?;
            let n = i + 1;
            let broken = |seq, why: String| AuditError::Broken { line: n, seq, why };
            // Never the line itself: an entry's text is not for error messages.
            let e: Entry = serde_json::from_str(&line).map_err(|err| {
                broken(
                    0,
                    format!(
                        "not an audit entry (column {}: {})",
                        err.column(),
                        match err.classify() {
                            serde_json::error::Category::Eof => "it ends early",
                            serde_json::error::Category::Syntax => "not JSON",
                            _ => "not the shape of an entry",
                        }
                    ),
                )
            })?;
            if e.hash != e.digest() {
                return Err(broken(
                    e.seq,
                    "its content was changed after it was written".into(),
                ));
            }
            // A segment begun after damage chains onto the last signed head it knew.
            if n == 1 && e.kind == DAMAGED {
                prev = e.hash.clone();
                out.push(e);
                continue;
            }
            let expected_seq = out.last().map(|l| l.seq + 1).unwrap_or(1);
            if e.prev != prev {
                return Err(broken(
                    e.seq,
                    if e.seq > expected_seq {
                        format!(
                            "entries {expected_seq}..{} are missing (deleted)",
                            e.seq - 1
                        )
                    } else if e.seq < expected_seq {
                        "it is out of order (entries were reordered or replayed)".into()
                    } else {
                        "it does not follow the entry before it (written outside Deskhand)".into()
                    },
                ));
            }
            if e.seq != expected_seq {
                return Err(broken(
                    e.seq,
                    format!("expected entry {expected_seq}: the numbering has a gap"),
                ));
            }
            if e.seq.is_multiple_of(self.every) {
                self.check_checkpoint(&e, &key)
                    .map_err(|why| broken(e.seq, why))?;
            }
            prev = e.hash.clone();
            out.push(e);
        }
        self.check_end(out.last())
            .map_err(|d| AuditError::End { why: d.why })?;
        Ok(out)
    }

    /// The damage recorded at the start of the current segment, if it began after damage.
    pub fn damage(entries: &[Entry]) -> Option<&Entry> {
        entries.first().filter(|e| e.kind == DAMAGED)
    }

    /// A checkpoint must be one, signed by this agent's key over everything before it.
    fn check_checkpoint(&self, e: &Entry, key: &ed25519_dalek::VerifyingKey) -> Result<(), String> {
        use ed25519_dalek::Verifier;
        if e.kind != "audit.checkpoint" {
            return Err(format!(
                "entry {} should be a signed checkpoint (every {}th is); the log was rebuilt without the agent's key",
                e.seq, self.every
            ));
        }
        let sig = unhex(e.data["signature"].as_str().unwrap_or_default())
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or("its checkpoint signature is unreadable")?;
        key.verify(
            format!("{}:{}", e.seq, e.prev).as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .map_err(|_| {
            "its checkpoint is not signed by this agent's key (the log was rebuilt)".to_string()
        })
    }

    /// Entries as written (unchecked), optionally of one job.
    pub fn read(&self, job: Option<&str>) -> Result<Vec<Entry>, AuditError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.io(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
            .filter(|e| job.is_none() || e.job.as_deref() == job)
            .collect())
    }
}

/// What this process last appended to a log: (inode, length after), seq and hash.
#[derive(Default)]
struct Tail {
    last: Option<((u64, u64), u64, String)>,
}

/// The tail cache of a log file, one per path in this process.
fn tail_of(path: &Path) -> Arc<Mutex<Tail>> {
    static TAILS: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<Tail>>>>> =
        LazyLock::new(Default::default);
    let mut all = TAILS.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(all.entry(path.to_path_buf()).or_default())
}

/// The log holds what jobs did: only its owner reads it (logs made before this rule included).
fn tighten(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    if meta.mode() & 0o077 != 0 {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

/// The last line of an open log: `None` if the file is empty, `Some(Err(()))` if that line is not
/// a whole entry (cut mid-line, or written outside Deskhand).
fn last_entry(f: &mut File) -> std::io::Result<Option<Result<Entry, ()>>> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    // Entries are small; read a growing tail until it holds a whole last line.
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        if !buf.ends_with(b"\n") {
            return Ok(Some(Err(())));
        }
        let text = String::from_utf8_lossy(&buf);
        let trimmed = text.trim_end_matches('\n');
        if let Some(i) = trimmed.rfind('\n') {
            return Ok(Some(
                serde_json::from_str(&trimmed[i + 1..]).map_err(|_| ()),
            ));
        }
        if start == 0 {
            return Ok(Some(serde_json::from_str(trimmed).map_err(|_| ())));
        }
        window *= 4;
    }
}

/// Keys whose values are secrets, whatever the nesting.
fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "cookie",
        "authorization",
        "api_key",
        "apikey",
        "credential",
        "cvv",
        "card_number",
        "cardnumber",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Replace secret values (by key) with `"[redacted]"`.
pub fn redact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    if secret_key(&k) {
                        (k, Value::String("[redacted]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => {
            // The list form of form values: [{"label": "Password", "value": "…"}].
            Value::Array(
                a.into_iter()
                    .map(|item| match item {
                        Value::Object(mut o)
                            if o.get("label")
                                .and_then(Value::as_str)
                                .is_some_and(secret_key) =>
                        {
                            o.insert("value".into(), Value::String("[redacted]".into()));
                            Value::Object(o)
                        }
                        other => redact(other),
                    })
                    .collect(),
            )
        }
        other => other,
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(log: &AuditLog) -> Vec<String> {
        std::fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write(log: &AuditLog, l: &[String]) {
        std::fs::write(log.path(), l.join("\n") + "\n").unwrap();
    }

    #[test]
    fn the_chain_detects_edits_deletions_reordering_and_forgeries() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::new(d.path());
        for i in 0..5 {
            log.append(
                "step.started",
                Some("j1"),
                json!({"n": i, "params": {"Password": "hunter2", "Email": "a@b.c"}}),
            )
            .unwrap();
        }
        assert_eq!(log.verify().unwrap().len(), 5);
        let good = lines(&log);
        assert!(!good.join("").contains("hunter2") && good.join("").contains("a@b.c"));

        let mut edited = good.clone();
        edited[2] = edited[2].replace("\"n\":2", "\"n\":7");
        write(&log, &edited);
        let e = log.verify().unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("entry 3") && e.contains("changed"),
            "{e}"
        );

        let mut deleted = good.clone();
        deleted.remove(1);
        write(&log, &deleted);
        let e = log.verify().unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("missing"), "{e}");

        let mut swapped = good.clone();
        swapped.swap(3, 4);
        write(&log, &swapped);
        let e = log.verify().unwrap_err().to_string();
        assert!(
            e.contains("line 4") && e.contains("missing") || e.contains("order"),
            "{e}"
        );

        // An entry appended by hand: a plausible line with a made-up hash.
        let mut forged = good.clone();
        let mut fake: Entry = serde_json::from_str(&good[4]).unwrap();
        fake.seq = 6;
        fake.kind = "file.written".into();
        forged.push(serde_json::to_string(&fake).unwrap());
        write(&log, &forged);
        let e = log.verify().unwrap_err().to_string();
        assert!(e.contains("line 6") && e.contains("changed"), "{e}");

        // Even with a correct hash, an entry that does not chain is caught.
        fake.hash = fake.digest();
        forged.pop();
        forged.push(serde_json::to_string(&fake).unwrap());
        write(&log, &forged);
        let e = log.verify().unwrap_err().to_string();
        assert!(
            e.contains("line 6") && e.contains("outside Deskhand"),
            "{e}"
        );

        write(&log, &good);
        log.append("job.ended", Some("j1"), json!({})).unwrap();
        assert_eq!(
            log.verify().unwrap().len(),
            6,
            "appending continues the chain"
        );
        assert_eq!(log.read(Some("j1")).unwrap().len(), 6);
    }

    #[test]
    fn writers_that_do_not_share_the_tail_cache_keep_one_chain() {
        // Two paths to one file stand in for two processes: each must notice the other's appends.
        let d = tempfile::tempdir().unwrap();
        let a = AuditLog::new(d.path());
        let b = AuditLog::at(d.path().join(".deskhand/./audit.jsonl"));
        for i in 0..6 {
            let log = if i % 3 == 0 { &b } else { &a };
            log.append("job.started", Some("j"), json!({"i": i}))
                .unwrap();
        }
        let all = a.verify().unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        // A file replaced under the writer (new inode) is read again, not chained onto memory.
        let text = std::fs::read_to_string(a.path()).unwrap();
        std::fs::remove_file(a.path()).unwrap();
        std::fs::write(a.path(), text).unwrap();
        a.append("job.ended", Some("j"), json!({})).unwrap();
        assert_eq!(a.verify().unwrap().len(), 7);
    }

    #[test]
    fn signed_checkpoints_catch_a_log_rebuilt_with_recomputed_hashes() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::new(d.path()).with_checkpoints_every(4);
        for i in 0..9 {
            log.append("step.started", Some("j"), json!({"i": i}))
                .unwrap();
        }
        let all = log.verify().unwrap();
        let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            all.len(),
            11,
            "two checkpoints among nine entries: {kinds:?}"
        );
        assert_eq!(all[3].kind, "audit.checkpoint");
        assert_eq!(all[7].kind, "audit.checkpoint");
        // Rebuild the whole chain after changing entry 2, recomputing every hash (what someone
        // without the key can do): the first checkpoint's signature no longer matches.
        let mut rebuilt = Vec::new();
        let mut prev = GENESIS.to_string();
        for mut e in all.clone() {
            if e.seq == 2 {
                e.data = json!({"i": 99});
            }
            e.prev = prev.clone();
            e.hash = e.digest();
            prev = e.hash.clone();
            rebuilt.push(serde_json::to_string(&e).unwrap());
        }
        write(&log, &rebuilt);
        let err = log.verify().unwrap_err().to_string();
        assert!(
            err.contains("entry 4") && err.contains("not signed"),
            "{err}"
        );
        // Dropping the checkpoints instead is caught too.
        let mut prev = GENESIS.to_string();
        let mut stripped = Vec::new();
        for (i, mut e) in all
            .into_iter()
            .filter(|e| e.kind != "audit.checkpoint")
            .enumerate()
        {
            e.seq = i as u64 + 1;
            e.prev = prev.clone();
            e.hash = e.digest();
            prev = e.hash.clone();
            stripped.push(serde_json::to_string(&e).unwrap());
        }
        write(&log, &stripped);
        let err = log.verify().unwrap_err().to_string();
        assert!(
            err.contains("entry 4") && err.contains("checkpoint"),
            "{err}"
        );
    }

    fn filled(n: usize) -> (tempfile::TempDir, AuditLog, Vec<String>) {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::new(d.path()).with_checkpoints_every(4);
        for i in 0..n {
            log.append("step.started", Some("j"), json!({"i": i}))
                .unwrap();
        }
        let good = lines(&log);
        (d, log, good)
    }

    #[test]
    fn a_cut_or_rewritten_end_is_caught_by_the_signed_head() {
        let (_d, log, good) = filled(6); // 7 entries: one checkpoint at 4
        assert_eq!(log.verify().unwrap().len(), 7);

        // The last entry dropped; cut at a line boundary further up.
        for keep in [6, 5, 1] {
            write(&log, &good[..keep]);
            let e = log.verify().unwrap_err().to_string();
            assert!(
                e.contains("signed head records 7") && e.contains("cut off"),
                "{keep}: {e}"
            );
        }
        // Cut in the middle of a line.
        let text = good.join("\n") + "\n";
        std::fs::write(log.path(), &text[..text.len() - 20]).unwrap();
        let e = log.verify().unwrap_err().to_string();
        assert!(
            e.contains("line 7") && e.contains("not an audit entry"),
            "{e}"
        );
        // Emptied, or deleted.
        std::fs::write(log.path(), "").unwrap();
        let e = log.verify().unwrap_err().to_string();
        assert!(
            e.contains("missing or empty") && e.contains("7 entries"),
            "{e}"
        );
        std::fs::remove_file(log.path()).unwrap();
        let e = log.verify().unwrap_err().to_string();
        assert!(e.contains("missing or empty"), "{e}");

        // Entries after the last checkpoint edited with every hash recomputed: the chain holds,
        // the signed head does not.
        let mut all: Vec<Entry> = good
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut prev = all[4].hash.clone();
        for e in all.iter_mut().skip(5) {
            e.data = json!({"i": 99});
            e.prev = prev.clone();
            e.hash = e.digest();
            prev = e.hash.clone();
        }
        write(
            &log,
            &all.iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect::<Vec<_>>(),
        );
        let e = log.verify().unwrap_err().to_string();
        assert!(e.contains("entry 7") && e.contains("rewritten"), "{e}");

        // A head that is not the agent's, or none at all while entries exist.
        write(&log, &good);
        assert!(log.verify().is_ok());
        let mut head = log.head().unwrap().unwrap();
        head.seq = 5;
        std::fs::write(log.head_path(), serde_json::to_vec(&head).unwrap()).unwrap();
        let e = log.verify().unwrap_err().to_string();
        assert!(e.contains("not signed by this agent"), "{e}");
        std::fs::remove_file(log.head_path()).unwrap();
        let e = log.verify().unwrap_err().to_string();
        assert!(e.contains("no signed head"), "{e}");
    }

    #[test]
    fn an_append_after_a_cut_keeps_the_damaged_file_and_starts_a_segment_that_says_so() {
        let (d, log, good) = filled(6);
        let head = log.head().unwrap().unwrap();
        // Cut the last two entries; a fresh writer (another process) appends next.
        write(&log, &good[..5]);
        let other = AuditLog::at(d.path().join(".deskhand/../.deskhand/audit.jsonl"))
            .with_checkpoints_every(4);
        let e = other.append("job.received", Some("k"), json!({})).unwrap();
        // The numbering does not continue from the cut: it goes on after the signed head.
        assert_eq!(e.seq, 9, "entry 8 is the damage record, 9 the caller's");
        let kept: Vec<_> = std::fs::read_dir(d.path().join(".deskhand"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("audit.damaged-"))
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        let kept_text = std::fs::read_to_string(d.path().join(".deskhand").join(&kept[0])).unwrap();
        assert_eq!(
            kept_text,
            good[..5].join("\n") + "\n",
            "the damaged file is kept as found"
        );

        let entries = log.verify().unwrap();
        let damage = AuditLog::damage(&entries).expect("the segment starts with the damage");
        assert_eq!(damage.seq, 8);
        assert_eq!(
            damage.prev, head.hash,
            "it chains onto the last signed head"
        );
        assert_eq!(damage.data["head"]["seq"], 7);
        assert_eq!(damage.data["found"]["seq"], 5);
        assert_eq!(damage.data["kept_as"], kept[0].as_str());
        assert!(damage.data["why"].as_str().unwrap().contains("cut off"));
        assert_eq!(entries.len(), 2);

        // A cut in the middle of a line is damage too.
        let text = std::fs::read_to_string(log.path()).unwrap();
        std::fs::write(log.path(), &text[..text.len() - 10]).unwrap();
        let next = AuditLog::at(
            d.path()
                .join("./.deskhand/../.deskhand/../.deskhand/audit.jsonl"),
        );
        next.append("job.received", Some("m"), json!({})).unwrap();
        let entries = log.verify().unwrap();
        let damage = AuditLog::damage(&entries).unwrap();
        assert!(
            damage.data["why"]
                .as_str()
                .unwrap()
                .contains("not a whole entry"),
            "{damage:?}"
        );
        assert_eq!(damage.seq, 10, "numbered after the signed head (entry 9)");
        // Deleting the log (and with it the damage record) is caught in turn.
        std::fs::remove_file(log.path()).unwrap();
        assert!(log.verify().is_err());
        log.append("job.received", Some("l"), json!({})).unwrap();
        let entries = log.verify().unwrap();
        let damage = AuditLog::damage(&entries).unwrap();
        assert_eq!(damage.seq, 12);
        assert!(damage.data["why"]
            .as_str()
            .unwrap()
            .contains("missing or empty"));
        assert!(
            damage.data["kept_as"].is_null(),
            "there was no file to keep"
        );
    }

    #[test]
    fn a_crash_between_an_entry_and_its_head_is_recorded_not_treated_as_a_cut() {
        let (d, log, _) = filled(5);
        // The state a kill -9 leaves after the entry reached the file and before the head did.
        let head_before = std::fs::read(log.head_path()).unwrap();
        log.append("job.received", Some("late"), json!({})).unwrap();
        std::fs::write(log.head_path(), &head_before).unwrap();
        let e = log.verify().unwrap_err().to_string();
        assert!(
            e.contains("never signed") && e.contains("crash or kill"),
            "{e}"
        );
        // The next writer (a restarted daemon) records it and goes on; nothing is set aside.
        let next = AuditLog::at(d.path().join(".deskhand/../.deskhand/audit.jsonl"))
            .with_checkpoints_every(4);
        let e = next
            .append("job.received", Some("after"), json!({}))
            .unwrap();
        let entries = log.verify().unwrap();
        assert!(AuditLog::damage(&entries).is_none());
        let note = entries
            .iter()
            .find(|e| e.kind == UNSIGNED)
            .expect("recorded");
        assert_eq!(
            note.data["entry"], 7,
            "entries 1..6 then the unsigned job.received"
        );
        // The note fell on a checkpoint slot (8 of every 4): a signed checkpoint came first.
        assert_eq!((note.seq, e.seq), (9, 10));
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.kind == "audit.checkpoint")
                .count(),
            2
        );
        let kept = std::fs::read_dir(d.path().join(".deskhand"))
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("audit.damaged-")
            });
        assert!(!kept);
        // Two unsigned entries are more than a crash leaves: that stays damage.
        let head_before = std::fs::read(log.head_path()).unwrap();
        log.append("x", None, json!({})).unwrap();
        log.append("y", None, json!({})).unwrap();
        std::fs::write(log.head_path(), &head_before).unwrap();
        assert!(log
            .verify()
            .unwrap_err()
            .to_string()
            .contains("outside Deskhand"));
    }

    #[test]
    fn a_log_from_before_signed_heads_is_continued_with_a_note_not_called_damaged() {
        let (d, log, good) = filled(5);
        // What every log written before signed heads looks like: entries, no head.
        std::fs::remove_file(log.head_path()).unwrap();
        let e = log.verify().unwrap_err().to_string();
        assert!(e.contains("no signed head"), "{e}");
        let next = AuditLog::at(d.path().join(".deskhand/../.deskhand/audit.jsonl"))
            .with_checkpoints_every(4);
        let e = next
            .append("job.received", Some("after"), json!({}))
            .unwrap();
        let entries = log.verify().unwrap();
        assert!(AuditLog::damage(&entries).is_none(), "not a new segment");
        assert_eq!(
            &lines(&log)[..good.len()],
            &good[..],
            "the old entries stay as they were"
        );
        let note = entries
            .iter()
            .find(|e| e.kind == UNSIGNED)
            .expect("recorded");
        assert_eq!(note.data["entry"], 6);
        assert!(note.data["why"]
            .as_str()
            .unwrap()
            .contains("before signed heads"));
        assert!(e.seq > note.seq, "the caller's entry follows the note");
        let kept = std::fs::read_dir(d.path().join(".deskhand"))
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("audit.damaged-")
            });
        assert!(!kept);
    }

    #[test]
    fn the_log_and_its_head_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, log, _) = filled(2);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(log.path()), 0o600);
        assert_eq!(mode(&log.head_path()), 0o600);
        // A log made before this rule (0644) is tightened by the next writer.
        std::fs::set_permissions(log.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let other = log
            .path()
            .parent()
            .unwrap()
            .join("../.deskhand/audit.jsonl");
        AuditLog::at(other).append("x", None, json!({})).unwrap();
        assert_eq!(mode(log.path()), 0o600);
    }

    #[test]
    fn secrets_are_redacted_at_any_depth_and_in_label_lists() {
        let v = redact(json!({
            "fields": [{"label": "Password", "value": "p"}, {"label": "Name", "value": "Ada"}],
            "nested": {"access_token": "t", "ok": 1},
            "Cookie": "c"
        }));
        assert_eq!(v["fields"][0]["value"], "[redacted]");
        assert_eq!(v["fields"][1]["value"], "Ada");
        assert_eq!(v["nested"]["access_token"], "[redacted]");
        assert_eq!(v["nested"]["ok"], 1);
        assert_eq!(v["Cookie"], "[redacted]");
    }
}

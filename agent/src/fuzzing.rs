//! Properties the agent's fuzz targets check (issue 14): the job envelope and the device
//! signatures on jobs and API requests, skill folders, and native-messaging frames. Shared with
//! the corpus replay tests below so every input the fuzzer kept is re-checked by `cargo test` on
//! stable. Each function takes the fuzzer's raw bytes and panics when a property fails; see
//! `fuzz/README.md`.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::guard::devices::{DeviceKey, Devices, SignatureError};
use crate::guard::requests::{self, Credential, Nonces};
use crate::job::{Job, JobError, MAX_JOB_BYTES};
use crate::skills::manifest::{self, Files};

/// One paired device in a private temporary workspace, shared by every run of the target.
struct Paired {
    _dir: tempfile::TempDir,
    devices: Devices,
    key: DeviceKey,
}

fn paired() -> &'static Paired {
    static PAIRED: OnceLock<Paired> = OnceLock::new();
    PAIRED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let devices = Devices::new(dir.path());
        let (_, secret) = devices.pair("fuzz").expect("pairing works");
        let key = DeviceKey::parse(&secret).expect("a fresh secret parses");
        Paired {
            _dir: dir,
            devices,
            key,
        }
    })
}

/// A fixed clock, so a replayed input checks what the fuzzer checked.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).expect("in range")
}

/// Job envelopes: any bytes are refused with an error or parse to a valid job that writes back
/// to the same job; no bytes verify as signed by the paired device, while the same job signed
/// with its key verifies after a trip through the wire and fails once altered. The same bytes
/// as an API request credential: parsing keeps every part, no credential verifies, and a request
/// signed by the device verifies once, whatever its method, path and body.
pub fn job_envelope(data: &[u8]) {
    let p = paired();
    match Job::from_bytes(data) {
        Ok(job) => {
            job.validate().expect("a parsed job is valid");
            let wire = job.to_bytes();
            let back = Job::from_bytes(&wire).expect("a job's own bytes parse");
            assert_eq!(back.to_bytes(), wire, "a job writes back as it was read");
            let _ = job.resolved();
            assert!(
                p.devices.verify_signature(&job, now()).is_err(),
                "unsigned bytes verified"
            );
            let mut signed = job.clone();
            p.key.sign_at(&mut signed, now());
            let wire = signed.to_bytes();
            if wire.len() <= MAX_JOB_BYTES {
                let received = Job::from_bytes(&wire).expect("a signed job parses");
                p.devices
                    .verify(&received, now())
                    .expect("a job signed by a paired device verifies");
                let mut altered = received.clone();
                altered.nonce.push('0');
                assert_eq!(
                    p.devices.verify(&altered, now()),
                    Err(SignatureError::BadSignature)
                );
            }
        }
        Err(JobError::TooLarge(n)) => assert!(n > MAX_JOB_BYTES),
        Err(e) => {
            let _ = (e.to_string(), e.code());
        }
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let nonces = Nonces::default();
    if let Ok(cred) = Credential::parse(text) {
        let again = format!(
            "{}.{}.{}.{}",
            cred.device, cred.time, cred.nonce, cred.signature
        );
        assert_eq!(Credential::parse(&again), Ok(cred.clone()));
        let r = requests::verify(&p.devices, &nonces, &cred, "GET", "/api/jobs", b"", now());
        assert!(r.is_err(), "a credential nobody signed verified: {text:?}");
    }
    let (method, rest) = text.split_once(' ').unwrap_or(("POST", text));
    let (target, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let header = requests::sign(&p.key, method, target, body.as_bytes(), now());
    let cred = Credential::parse(&header).expect("a signed credential parses");
    let check = |n: &Nonces, m: &str| {
        requests::verify(&p.devices, n, &cred, m, target, body.as_bytes(), now())
    };
    assert_eq!(check(&nonces, method).as_deref(), Ok(p.key.id()));
    assert!(matches!(
        check(&nonces, method),
        Err(requests::RequestError::Replayed(_))
    ));
    if !method.eq_ignore_ascii_case("PATCH") {
        assert_eq!(
            check(&Nonces::default(), "PATCH"),
            Err(requests::RequestError::Forged)
        );
    }
}

/// Skill folders (`SKILL.md` front matter and `skill.yaml`): any text gives a whole manifest or
/// problems, never a panic; each problem names one of the two files and a line inside it; a
/// manifest is named like its folder, uses only known actions, has one parameter per name and
/// reads the same (hash included) a second time.
///
/// Input layout: the folder's name, a newline, SKILL.md, then (after a NUL) skill.yaml.
pub fn skill_manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (folder, files) = text.split_once('\n').unwrap_or(("fuzz", &text));
    let (md, yaml) = match files.split_once('\0') {
        Some((md, yaml)) => (md, Some(yaml)),
        None => (files, None),
    };
    let shown = "skills/under-test";
    let f = Files {
        folder,
        shown,
        skill_md: md,
        skill_yaml: yaml,
        lenient: false,
    };
    match manifest::read(&f) {
        Ok(m) => {
            assert_eq!(m.front.name, folder);
            assert!(manifest::check_name(folder).is_ok());
            assert_eq!(m.executable, yaml.is_some());
            assert!(m.trigger.as_deref().is_none_or(|t| t.starts_with('/')));
            assert_eq!(m.hash.len(), 64);
            for s in &m.steps {
                assert!(
                    crate::skills::actions::find(&s.uses).is_some(),
                    "{}",
                    s.uses
                );
                let _ = crate::skills::template::render(
                    &Value::Object(s.args.clone()),
                    &Default::default(),
                );
            }
            let mut names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), m.params.len());
            let again = manifest::read(&f).expect("reads the same twice");
            assert_eq!(again.hash, m.hash);
            let _ = serde_json::to_string(&m).expect("a manifest serializes");
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in &problems {
                let content = if p.file == format!("{shown}/SKILL.md") {
                    md
                } else {
                    assert_eq!(p.file, format!("{shown}/skill.yaml"));
                    yaml.expect("a problem in skill.yaml means there is one")
                };
                // YAML counts lines as editors do: `\r`, `\n`, `\r\n` and the Unicode line
                // breaks each end one; after a final break there is one more (empty) line.
                let breaks = content
                    .replace("\r\n", "\n")
                    .matches(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
                    .count();
                if let Some(line) = p.line {
                    assert!(
                        line >= 1 && line <= breaks + 1,
                        "{p} is outside {}'s {} lines",
                        p.file,
                        breaks + 1
                    );
                }
                let _ = p.to_string();
            }
        }
    }
}

/// Native messaging from the browser (a 4-byte native-endian length, then that many bytes):
/// reading consumes exactly the frames the bytes hold, in order; it ends cleanly only where no
/// whole length is left and fails only on a length over the limit or one the input cannot
/// fill; what the host writes, the reader reads back, and a message over Chrome's 1 MB limit
/// goes out in chunks that each fit and reassemble to it (input starting `chunk:`).
pub fn native_messaging(data: &[u8]) {
    use crate::extension::host::{frames, read_frame, write_message, MAX_TO_BROWSER};

    futures::executor::block_on(async {
        let mut input = data;
        let mut offset = 0;
        loop {
            match read_frame(&mut input).await {
                Ok(Some(frame)) => {
                    let len = u32::from_ne_bytes(data[offset..offset + 4].try_into().unwrap());
                    assert_eq!(frame.len(), len as usize);
                    assert_eq!(frame, &data[offset + 4..offset + 4 + frame.len()]);
                    offset += 4 + frame.len();
                    let mut out = Vec::new();
                    write_message(&mut out, &frame)
                        .await
                        .expect("writes to memory");
                    let mut back = out.as_slice();
                    let first = read_frame(&mut back).await.expect("reads what was written");
                    assert_eq!(first.as_deref(), Some(frame.as_slice()));
                    assert!(back.is_empty());
                }
                Ok(None) => {
                    assert!(data.len() - offset < 4, "stopped early at {offset}");
                    break;
                }
                Err(e) => {
                    let len = u32::from_ne_bytes(data[offset..offset + 4].try_into().unwrap());
                    assert!(
                        len as usize > data.len() - offset - 4 || e.to_string().contains("larger"),
                        "{e}"
                    );
                    break;
                }
            }
        }
    });

    // After `chunk:`, the bytes as text repeated past the limit, as one large JSON message to
    // the browser (the host only ever sends JSON, so the text is escaped as serde_json escapes
    // it). Behind a prefix because a megabyte per run slows the search a hundredfold.
    if let Some(rest) = data.strip_prefix(b"chunk:").filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(rest);
        let mut big = String::new();
        while big.len() <= MAX_TO_BROWSER {
            big.push_str(&text);
        }
        let json = serde_json::to_vec(&Value::String(big)).expect("a string serializes");
        let pieces = frames(&json);
        assert!(pieces.len() > 1);
        let mut whole = String::new();
        for (i, f) in pieces.iter().enumerate() {
            assert!(f.len() <= MAX_TO_BROWSER, "chunk {i} is {} bytes", f.len());
            let v: Value = serde_json::from_slice(f).expect("a chunk is JSON");
            assert_eq!(
                (v["seq"].as_u64(), v["total"].as_u64()),
                (Some(i as u64), Some(pieces.len() as u64))
            );
            whole.push_str(v["data"].as_str().expect("chunk data is text"));
        }
        assert_eq!(whole.as_bytes(), json.as_slice());
    }
}

#[cfg(test)]
mod tests {
    use deskhand_workspace::fuzzing::replay;

    #[test]
    fn the_job_envelope_corpus_replays() {
        replay("job_envelope", super::job_envelope);
    }

    #[test]
    fn the_skill_manifest_corpus_replays() {
        replay("skill_manifest", super::skill_manifest);
    }

    #[test]
    fn the_native_messaging_corpus_replays() {
        replay("native_messaging", super::native_messaging);
    }
}

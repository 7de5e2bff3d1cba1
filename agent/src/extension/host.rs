//! `deskhand native-host`: the process Chrome starts for the extension. It speaks Chrome's native
//! messaging on stdin/stdout (a 4-byte native-endian length, then JSON) and relays every message,
//! as one JSON line, to the agent's Unix socket and back. It refuses any caller but the Deskhand
//! extension, and it outlives agent restarts: it reconnects and replays the extension's hello.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::{extension_id, hub::socket_path, origin_id};

/// Chrome refuses messages from a host larger than this.
pub const MAX_TO_BROWSER: usize = 1024 * 1024;
/// Chrome sends at most this much in one message.
const MAX_FROM_BROWSER: usize = 64 * 1024 * 1024;
/// Data per chunk when a message to the browser is too large (JSON escaping may grow it a bit).
const CHUNK: usize = 256 * 1024;

/// Why the host stopped.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Chrome started us for another extension.
    #[error("refused: {origin:?} is not the Deskhand extension (chrome-extension://{expected}/); reinstall with `deskhand extension install`")]
    WrongCaller {
        /// What Chrome passed.
        origin: String,
        /// The one id this host serves.
        expected: String,
    },
    /// Reading or writing a pipe failed.
    #[error("native messaging: {0}")]
    Io(#[from] std::io::Error),
}

/// Check the caller, then relay until Chrome closes stdin.
pub async fn run(workspace: &Path, origin: &str) -> Result<(), HostError> {
    let expected = extension_id();
    if origin_id(origin) != Some(expected.as_str()) {
        // Recorded where the person looks for what happened, not only on Chrome's stderr.
        if let Ok(store) = crate::store::Store::open(workspace) {
            store.audit().record(
                "extension.refused",
                None,
                json!({"origin": origin, "expected": expected, "by": "native host"}),
            );
        }
        return Err(HostError::WrongCaller {
            origin: origin.to_string(),
            expected,
        });
    }
    let (from_browser_tx, mut from_browser) = mpsc::unbounded_channel::<Vec<u8>>();
    // stdin is read on its own task so messages keep flowing while the agent is away.
    let reader = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        while let Ok(Some(msg)) = read_frame(&mut stdin).await {
            if from_browser_tx.send(msg).is_err() {
                break;
            }
        }
    });
    let mut stdout = tokio::io::stdout();
    let mut hello: Option<Vec<u8>> = None;
    let mut said_down = false;
    let socket = socket_path(workspace);
    let role = json!({"role": "host", "origin": origin}).to_string();
    'agent: loop {
        let stream = match UnixStream::connect(&socket).await {
            Ok(s) => s,
            Err(_) => {
                if !said_down {
                    said_down = true;
                    let down = json!({"type": "agent_down", "message": "the Deskhand agent is not running: start it with `deskhand serve`"});
                    write_message(&mut stdout, down.to_string().as_bytes()).await?;
                }
                // Keep reading the browser meanwhile: remember its hello, answer requests.
                let wait = tokio::time::sleep(Duration::from_millis(500));
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => continue 'agent,
                        msg = from_browser.recv() => match msg {
                            None => break 'agent,
                            Some(m) => unanswered(&mut stdout, &m, &mut hello).await?,
                        }
                    }
                }
            }
        };
        let (read, mut write) = stream.into_split();
        write.write_all(format!("{role}\n").as_bytes()).await?;
        if let Some(h) = &hello {
            write.write_all(h).await?;
            write.write_all(b"\n").await?;
        }
        let mut lines = BufReader::new(read).lines();
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(l)) => write_message(&mut stdout, l.as_bytes()).await?,
                    // The agent went away (restart): tell the extension, then reconnect.
                    _ => {
                        let down = json!({"type": "agent_down", "message": "the Deskhand agent stopped; reconnecting"});
                        write_message(&mut stdout, down.to_string().as_bytes()).await?;
                        said_down = true;
                        continue 'agent;
                    }
                },
                msg = from_browser.recv() => match msg {
                    None => break 'agent,
                    Some(m) => {
                        if is_hello(&m) {
                            hello = Some(m.clone());
                        }
                        write.write_all(&m).await?;
                        write.write_all(b"\n").await?;
                    }
                },
            }
        }
    }
    reader.abort();
    Ok(())
}

fn is_hello(m: &[u8]) -> bool {
    serde_json::from_slice::<Value>(m).is_ok_and(|v| v["type"] == "hello")
}

/// While the agent is away: keep the hello for later and fail popup requests at once.
async fn unanswered<W: AsyncWrite + Unpin>(
    out: &mut W,
    m: &[u8],
    hello: &mut Option<Vec<u8>>,
) -> std::io::Result<()> {
    let v: Value = serde_json::from_slice(m).unwrap_or(Value::Null);
    if v["type"] == "hello" {
        *hello = Some(m.to_vec());
    } else if v["type"] == "request" {
        let reply = json!({"reply": v["rid"], "ok": false,
                           "error": {"code": "not_connected", "message": "the Deskhand agent is not running: start it with `deskhand serve`"}});
        write_message(out, reply.to_string().as_bytes()).await?;
    }
    Ok(())
}

/// Read one native message (None at end of input).
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_ne_bytes(len) as usize;
    if n > MAX_FROM_BROWSER {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a native message of {n} bytes is larger than Chrome ever sends"),
        ));
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Write one message to the browser, split into chunks the extension reassembles when it is
/// over Chrome's 1 MB limit.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, json: &[u8]) -> std::io::Result<()> {
    for frame in frames(json) {
        w.write_all(&(frame.len() as u32).to_ne_bytes()).await?;
        w.write_all(&frame).await?;
    }
    w.flush().await
}

/// The frames for one message: itself, or `{chunk, seq, total, data}` pieces.
pub fn frames(json: &[u8]) -> Vec<Vec<u8>> {
    if json.len() <= MAX_TO_BROWSER {
        return vec![json.to_vec()];
    }
    let text = String::from_utf8_lossy(json);
    let mut pieces = Vec::new();
    let mut rest: &str = &text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(CHUNK);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    let id = crate::job::random_hex(8);
    let total = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(seq, data)| {
            json!({"chunk": id, "seq": seq, "total": total, "data": data})
                .to_string()
                .into_bytes()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_messages_are_chunked_under_the_limit_and_reassemble() {
        let big = json!({"id": 7, "op": "call", "args": ["ø".repeat(700_000)]}).to_string();
        assert!(big.len() > MAX_TO_BROWSER);
        let frames = frames(big.as_bytes());
        assert!(frames.len() > 1);
        let mut whole = String::new();
        for (i, f) in frames.iter().enumerate() {
            assert!(f.len() <= MAX_TO_BROWSER, "frame {i} is {} bytes", f.len());
            let v: Value = serde_json::from_slice(f).unwrap();
            assert_eq!(v["seq"], i);
            assert_eq!(v["total"], frames.len());
            whole.push_str(v["data"].as_str().unwrap());
        }
        assert_eq!(whole, big);
        assert_eq!(super::frames(b"{}"), vec![b"{}".to_vec()]);
    }

    #[tokio::test]
    async fn frames_round_trip_through_a_pipe() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_message(&mut a, br#"{"type":"hello"}"#).await.unwrap();
        drop(a);
        assert_eq!(
            read_frame(&mut b).await.unwrap().unwrap(),
            br#"{"type":"hello"}"#
        );
        assert!(read_frame(&mut b).await.unwrap().is_none());
    }
}

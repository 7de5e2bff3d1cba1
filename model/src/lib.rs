//! Language model clients for Deskhand's planner. Two wire protocols, both streamed and both with
//! tool calls: the Anthropic Messages API and OpenAI-compatible Chat Completions (which also
//! covers local servers: Ollama, llama.cpp's server, vLLM, LM Studio). One conversation type
//! ([`Request`], [`Message`], [`Block`]) is translated to either protocol; the reply streams text
//! as it comes ([`Delta`]) and ends as a [`Reply`] with the tool calls reassembled.
//!
//! Retries: 429, 529 and 5xx answers (and a failed connection) are retried with the server's
//! `retry-after` or a doubling delay, before any of the reply has streamed. The API key is sent
//! in a header and never appears in an error, a log line or `Debug` output.

mod anthropic;
mod error;
mod openai;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::ModelError;

/// Which wire protocol a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// The Anthropic Messages API (`POST /v1/messages`).
    Anthropic,
    /// OpenAI-compatible Chat Completions (`POST …/chat/completions`).
    Openai,
}

impl Provider {
    /// The provider's public endpoint.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::Openai => "https://api.openai.com/v1",
        }
    }

    /// The name used in config and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Openai => "openai",
        }
    }
}

impl FromStr for Provider {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Provider, ModelError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "anthropic" | "claude" => Ok(Provider::Anthropic),
            "openai" | "openai-compatible" | "ollama" => Ok(Provider::Openai),
            other => Err(ModelError::Config(format!(
                "unknown model provider {other:?}; use anthropic or openai (any OpenAI-compatible \
                 server: Ollama, llama.cpp, vLLM, LM Studio)"
            ))),
        }
    }
}

/// An API key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a key (surrounding whitespace removed).
    pub fn new(key: &str) -> ApiKey {
        ApiKey(key.trim().to_string())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

/// How often and how patiently to retry a refused or failed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first wait when the server names none.
    pub base: Duration,
    /// No single wait is longer (a `retry-after` too).
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            max_attempts: 4,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// How much one planned job (or one sub-agent) may spend before it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Model turns.
    pub max_turns: u32,
    /// Input tokens, all turns together.
    pub max_input_tokens: u64,
    /// Output tokens, all turns together.
    pub max_output_tokens: u64,
    /// Wall time.
    pub max_time: Duration,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_turns: 24,
            max_input_tokens: 400_000,
            max_output_tokens: 40_000,
            max_time: Duration::from_secs(15 * 60),
        }
    }
}

impl Budget {
    /// Why a job that has used `turns` and `used` after `elapsed` must stop, if it must.
    pub fn exceeded(&self, turns: u32, used: Usage, elapsed: Duration) -> Option<String> {
        if turns >= self.max_turns {
            Some(format!("it used its {} model turns", self.max_turns))
        } else if used.input_tokens >= self.max_input_tokens {
            Some(format!(
                "it read {} input tokens (budget {})",
                used.input_tokens, self.max_input_tokens
            ))
        } else if used.output_tokens >= self.max_output_tokens {
            Some(format!(
                "it wrote {} output tokens (budget {})",
                used.output_tokens, self.max_output_tokens
            ))
        } else if elapsed >= self.max_time {
            Some(format!(
                "it ran {} s (budget {} s)",
                elapsed.as_secs(),
                self.max_time.as_secs()
            ))
        } else {
            None
        }
    }
}

/// What a model costs, in US dollars per million tokens (`[model] input_price_per_mtok`,
/// `output_price_per_mtok`): providers price input and output separately.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Dollars per million input tokens.
    pub input_per_mtok: f64,
    /// Dollars per million output tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// What `used` costs, in US dollars.
    pub fn cost(&self, used: Usage) -> f64 {
        (used.input_tokens as f64 * self.input_per_mtok
            + used.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// Which model, where, and how.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The wire protocol.
    pub provider: Provider,
    /// Where it is served (`https://api.anthropic.com`, `http://localhost:11434/v1`).
    pub base_url: url::Url,
    /// The model's name.
    pub model: String,
    /// The most tokens one reply may have.
    pub max_tokens: u32,
    /// The key, when the server needs one (a local server does not).
    pub api_key: Option<ApiKey>,
    /// Retries.
    pub retry: Retry,
    /// The longest a request may wait for its first byte, and then between two bytes.
    pub timeout: Duration,
    /// What it costs, when the person said (token use is recorded either way).
    pub price: Option<Price>,
}

impl ModelConfig {
    /// A configuration with the provider's public endpoint and defaults.
    pub fn new(provider: Provider, model: &str) -> ModelConfig {
        ModelConfig {
            provider,
            base_url: url::Url::parse(provider.default_base_url()).expect("a valid built-in URL"),
            model: model.to_string(),
            max_tokens: 4096,
            api_key: None,
            retry: Retry::default(),
            timeout: Duration::from_secs(120),
            price: None,
        }
    }

    /// `path` under the base URL (which may or may not end in `/`).
    fn endpoint(&self, path: &str) -> Result<url::Url, ModelError> {
        let mut base = self.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(path)
            .map_err(|e| ModelError::Config(format!("base URL {}: {e}", self.base_url)))
    }
}

/// A tool the model may call: a name (letters, digits, `_`, `-`), what it does, and the JSON
/// Schema of its input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// The name the model calls it by.
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// JSON Schema of its input object.
    pub input_schema: Value,
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// The model calls a tool.
    ToolUse {
        /// The call's id (answered by a [`Block::ToolResult`] with the same id).
        id: String,
        /// The tool.
        name: String,
        /// Its input.
        input: Value,
    },
    /// What a tool call gave back.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// The result as text.
        content: String,
        /// The call failed; `content` says why.
        #[serde(default)]
        is_error: bool,
    },
}

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person, or tool results.
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who.
    pub role: Role,
    /// What.
    pub content: Vec<Block>,
}

impl Message {
    /// A user message of one text.
    pub fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }
}

/// One request: the instructions, the conversation so far, and the tools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The system prompt (instructions only; never content from pages, mail or files).
    pub system: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<Tool>,
    /// Overrides the configured most tokens for this reply.
    pub max_tokens: Option<u32>,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It ran into the token limit.
    MaxTokens,
    /// Something else the server said.
    Other(String),
}

/// Tokens used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Read.
    pub input_tokens: u64,
    /// Written.
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
    }
}

/// A whole reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Text and tool calls, in order.
    pub content: Vec<Block>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Tokens.
    pub usage: Usage,
}

impl Reply {
    /// The reply's text, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The tool calls: (id, name, input).
    pub fn tool_calls(&self) -> Vec<(&str, &str, &Value)> {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
                _ => None,
            })
            .collect()
    }
}

/// What streams in while a reply is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta<'a> {
    /// A piece of text.
    Text(&'a str),
    /// The model started a tool call.
    ToolCall {
        /// The tool.
        name: &'a str,
    },
}

/// A client for one configured model.
#[derive(Debug, Clone)]
pub struct Client {
    cfg: ModelConfig,
    http: reqwest::Client,
}

impl Client {
    /// A client for `cfg`.
    pub fn new(cfg: ModelConfig) -> Result<Client, ModelError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(cfg.timeout)
            .build()
            .map_err(|e| ModelError::Config(format!("HTTP client: {e}")))?;
        Ok(Client { cfg, http })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Ask for the next reply, streaming its text and tool calls to `on` as they arrive.
    pub async fn complete(
        &self,
        req: &Request,
        on: &mut (dyn FnMut(Delta<'_>) + Send),
    ) -> Result<Reply, ModelError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = match self.cfg.provider {
                Provider::Anthropic => anthropic::send(&self.http, &self.cfg, req).await,
                Provider::Openai => openai::send(&self.http, &self.cfg, req).await,
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let Some(wait) = self.wait_before_retry(&e, attempt) else {
                        return Err(e.after(attempt));
                    };
                    tracing::info!(attempt, error = %e, ?wait, "model request failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            return match self.cfg.provider {
                Provider::Anthropic => anthropic::read_stream(response, on).await,
                Provider::Openai => openai::read_stream(response, on).await,
            };
        }
    }

    fn wait_before_retry(&self, e: &ModelError, attempt: u32) -> Option<Duration> {
        if !e.is_retryable() || attempt >= self.cfg.retry.max_attempts {
            return None;
        }
        let doubling = self
            .cfg
            .retry
            .base
            .saturating_mul(1u32 << (attempt - 1).min(16));
        Some(
            e.retry_after()
                .unwrap_or(doubling)
                .min(self.cfg.retry.max_delay),
        )
    }
}

/// Read an error answer: status, the provider's message, `retry-after`.
async fn error_of(response: reqwest::Response, cfg: &ModelConfig) -> ModelError {
    let status = response.status().as_u16();
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .or_else(|| v["message"].as_str())
                .map(String::from)
        })
        .unwrap_or_else(|| body.chars().take(300).collect());
    ModelError::from_status(status, message, after, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_shows_in_debug_output() {
        let mut cfg = ModelConfig::new(Provider::Anthropic, "m");
        cfg.api_key = Some(ApiKey::new(" sk-secret-123 "));
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert_eq!(cfg.api_key.unwrap().expose(), "sk-secret-123");
    }

    #[test]
    fn cost_is_priced_per_million_tokens_of_each_kind() {
        let p = Price {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
        };
        let used = Usage {
            input_tokens: 200_000,
            output_tokens: 10_000,
        };
        assert!((p.cost(used) - 0.75).abs() < 1e-9, "{}", p.cost(used));
    }

    #[test]
    fn endpoints_join_with_or_without_a_trailing_slash() {
        let mut cfg = ModelConfig::new(Provider::Openai, "m");
        cfg.base_url = url::Url::parse("http://127.0.0.1:11434/v1").unwrap();
        assert_eq!(
            cfg.endpoint("chat/completions").unwrap().as_str(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        cfg.base_url = url::Url::parse("http://127.0.0.1:11434/v1/").unwrap();
        assert_eq!(
            cfg.endpoint("chat/completions").unwrap().as_str(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert!("gemini".parse::<Provider>().is_err());
        assert_eq!("Ollama".parse::<Provider>().unwrap(), Provider::Openai);
    }
}

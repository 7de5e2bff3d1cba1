//! The browser crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while driving a browser. Messages say what was expected, what was
/// found, and what to do about it; they never contain field values typed into password inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Chromium executable is not where we looked.
    #[error(
        "chromium not found at {path}; install it (Debian/Ubuntu: `sudo apt-get install -y chromium chromium-driver`) \
         or point DESKHAND_CHROME (or `chrome` in .deskhand/config.toml) at a Chromium/Chrome binary"
    )]
    ChromiumMissing {
        /// Where we looked.
        path: PathBuf,
    },
    /// The chromedriver executable is not where we looked.
    #[error(
        "chromedriver not found at {path}; install it (Debian/Ubuntu: `sudo apt-get install -y chromium-driver`) \
         or set DESKHAND_CHROMEDRIVER, or use the default CDP backend (`--backend cdp`)"
    )]
    DriverMissing {
        /// Where we looked.
        path: PathBuf,
    },
    /// A browser or driver process started but never became ready.
    #[error("{program} did not start: {reason}{}", tail(stderr))]
    LaunchFailed {
        /// Which program (chromium, chromedriver).
        program: String,
        /// Why we gave up.
        reason: String,
        /// The last lines it printed, to help diagnose.
        stderr: String,
    },
    /// The browser went away (crashed or was closed) while we were using it.
    #[error("the browser is gone ({0}); it crashed or was closed — start a new one")]
    BrowserGone(String),
    /// A page failed to load.
    #[error("could not load {url}: {reason}")]
    Navigation {
        /// The URL we tried.
        url: String,
        /// Chromium's reason (net::ERR_…) or a timeout.
        reason: String,
    },
    /// An element could not be found, or not used, before the timeout.
    #[error(
        "{what}: {reason} after {waited_ms} ms{}{}",
        list("closest candidates", candidates),
        list("attempts", attempts)
    )]
    Element {
        /// What we looked for, in words.
        what: String,
        /// The last state seen: not found, hidden, disabled, covered, …
        reason: String,
        /// How long we waited.
        waited_ms: u64,
        /// What the page had that came closest.
        candidates: Vec<String>,
        /// One line per attempt of the retry ladder.
        attempts: Vec<String>,
    },
    /// A locator matched several elements and we refuse to guess.
    #[error("{what} is ambiguous: it matches {} elements; use a longer label or a CSS locator{}", candidates.len(), list("matches", candidates))]
    Ambiguous {
        /// What we looked for.
        what: String,
        /// The elements it matched.
        candidates: Vec<String>,
    },
    /// A form fill left some keys unfilled (the report says which and why).
    #[error("form fill failed for {} of {} fields:{}", failed.len(), total, list("", failed))]
    Fill {
        /// One line per failed key.
        failed: Vec<String>,
        /// How many keys were asked for.
        total: usize,
        /// The whole report, for callers that want the per-field detail.
        report: Box<crate::FillReport>,
    },
    /// A locator string could not be parsed, or a value has the wrong shape.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// An extraction schema is wrong.
    #[error("bad extraction schema{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Schema {
        /// The schema file, if it came from one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        message: String,
    },
    /// JavaScript we ran in the page threw.
    #[error("in-page script failed: {0}")]
    Script(String),
    /// The CDP or WebDriver transport reported an error.
    #[error("{backend} protocol error: {message}")]
    Protocol {
        /// "cdp" or "webdriver".
        backend: &'static str,
        /// The transport's message.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing an output format failed.
    #[error("could not write {format}: {message}")]
    Output {
        /// csv, json, png…
        format: &'static str,
        /// Why.
        message: String,
    },
    /// The operation was not supported by this backend.
    #[error("{0}")]
    Unsupported(String),
    /// The Deskhand extension (the person's own browser) could not run a command.
    #[error("in your browser: {message}")]
    Extension {
        /// `not_connected`, `disconnected`, `no_tab`, `no_host_access`, `navigation`, `timeout`…
        code: String,
        /// What happened and what to do.
        message: String,
    },
}

fn tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\nlast output:\n{}", stderr.trim_end())
    }
}

fn list(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = if title.is_empty() {
        String::new()
    } else {
        format!("\n  {title}:")
    };
    for i in items {
        s.push_str("\n    - ");
        s.push_str(i);
    }
    s
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

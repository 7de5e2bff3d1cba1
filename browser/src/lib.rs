//! Deskhand's browser engine: drive headless Chromium over CDP (default) or WebDriver, the way a
//! person reads a page.
//!
//! - [`Browser`] starts Chromium (fresh temp profile or a persistent one) and owns its processes:
//!   nothing it starts outlives it, even when our process is SIGKILLed.
//! - [`Page`] is one tab. Its actions — [`Page::fill`], [`Page::click`], [`Page::scroll_until`],
//!   [`Page::screenshot`] — resolve [`Locator`]s lazily and auto-wait (attached, visible, enabled,
//!   stable) on a retry ladder; failures name what was looked for and the closest candidates.
//! - All in-page logic lives in one script ([`SCRIPT`], `js/deskhand.js`), shared by both backends
//!   and the Chrome extension; a whole form is filled in one round trip.
//! - [`extract`] turns HTML (live or saved) into records with `scraper`, in parallel over files.
//!
//! ```
//! use deskhand_browser::{extract::Schema, Locator};
//! // Locators parse from the strings people and skills write.
//! assert_eq!(Locator::field("Email").unwrap(), Locator::Label { value: "Email".into() });
//! // Extraction is pure: HTML in, records out.
//! let schema = Schema::parse("items: li\nfields:\n  name: b\n").unwrap();
//! let page = schema.extract("<ul><li><b> Ada </b></li></ul>", None).unwrap();
//! assert_eq!(page.records[0]["name"], "Ada");
//! ```

mod browser;
mod cdp;
mod error;
mod extension;
pub mod extract;
mod fill;
/// Fuzzing properties, shared by `fuzz/` and the corpus replay test; not an API.
#[doc(hidden)]
pub mod fuzzing;
mod launch;
mod locator;
mod page;
mod popups;
pub mod process;
mod retry;
mod script;
mod webdriver;

pub use browser::Browser;
pub use error::{Error, Result};
pub use extension::{LinkFuture, TabLink};
pub use fill::{FieldReport, FieldStatus, FillReport, FillRequest, Matched, Submit, SubmitReport};
pub use launch::{
    chromium_flags, find_chrome, find_chromedriver, reap_stale_profiles, sandbox_disabled, Backend,
    LaunchOptions, BASE_FLAGS,
};
pub use locator::Locator;
pub use page::{ClickReport, Located, Page, ScrollReport, ScrollStop, ScrollUntil, Shot};
pub use script::SCRIPT;

/// Decides whether a page may load a document URL (see [`Page::intercept_navigation`]).
pub type NavigationCheck = std::sync::Arc<dyn Fn(&str, NavigationSource) -> bool + Send + Sync>;

/// Which window a checked document request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NavigationSource {
    /// The guarded page itself (or one of its frames).
    Page,
    /// A window the guarded page opened (`window.open`, `target=_blank`), or one that opened.
    Popup,
}

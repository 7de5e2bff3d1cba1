//! The guard's door to the browser: a page the job's policy watches. The start URL is checked,
//! every document a headless page then loads (redirects, script navigation, form posts) is
//! checked in the browser before it is requested (an extension tab is checked after each action),
//! popups are blocked by the pool. Cancellation closes a headless page; the person's tab is left
//! open, its navigation filters lifted.

use std::sync::{Arc, Mutex};

use deskhand_browser::Page;

use super::Guard;
use crate::extension::tabs::{self, Target};
use crate::runner::StepError;

/// A page from the pool whose navigation the guard checks. What the guard blocked is collected,
/// so an action whose page was stopped fails with the refusal, not with a load error.
pub struct GuardedPage<'g> {
    guard: &'g Guard,
    /// The pool's browser (none for a tab of the person's own browser).
    browser: Option<Arc<deskhand_browser::Browser>>,
    page: Page,
    blocked: Arc<Mutex<Vec<String>>>,
    /// WebDriver cannot intercept: check the URL after each action instead.
    post_check: bool,
    /// The person's tab whose navigation filters are lifted when the step ends.
    filter: Option<TabFilter>,
}

/// A tab of the person's browser under a job's navigation filters. Lifted by [`TabFilter::lift`]
/// when the step ends; a step cut off (timeout, cancel) drops it, and the drop lifts them too.
struct TabFilter {
    hub: Arc<crate::extension::ExtensionHub>,
    tab: i64,
    lifted: bool,
}

impl TabFilter {
    async fn lift(mut self) {
        self.lifted = true;
        if let Err(e) = tabs::unguard(&self.hub, self.tab).await {
            tracing::warn!(tab = self.tab, error = %e, "could not lift the tab's navigation filters");
        }
    }
}

impl Drop for TabFilter {
    fn drop(&mut self) {
        if self.lifted {
            return;
        }
        let (hub, tab) = (Arc::clone(&self.hub), self.tab);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tabs::unguard(&hub, tab).await;
            });
        }
    }
}

impl<'g> GuardedPage<'g> {
    /// The page a step's `url` and `target` arguments name; an extension tab is already at
    /// `url` afterwards, a headless page is still blank.
    async fn open(
        guard: &'g Guard,
        url: &str,
        target: &str,
        fallback_headless: bool,
    ) -> Result<GuardedPage<'g>, StepError> {
        guard.check_url(url)?;
        let target = Target::parse(target).map_err(StepError::Fatal)?;
        if target.is_tab() {
            let hub = &guard.env.extension;
            let filters = guard.navigation_filters();
            match tabs::resolve(hub, &target, url, &filters).await {
                Ok(tab) => {
                    // A tab the job opened was filtered from its first request; one of the
                    // person's is filtered from now on.
                    if target != Target::New {
                        tabs::guard(hub, tab, &filters).await?;
                    }
                    let (action, nav) = guard.env.browsers.timeouts();
                    let link: Arc<dyn deskhand_browser::TabLink> = Arc::clone(hub) as _;
                    let page = GuardedPage {
                        guard,
                        browser: None,
                        page: Page::in_extension_tab(link, tab, action, nav),
                        blocked: Arc::new(Mutex::new(Vec::new())),
                        post_check: true,
                        filter: Some(TabFilter {
                            hub: Arc::clone(hub),
                            tab,
                            lifted: false,
                        }),
                    };
                    let ready = async {
                        let now = page.page.url().await?;
                        if target == Target::New && !same_page(&now, url) {
                            // Its first page led it away and the filters stopped it: a refusal.
                            guard.check_url(&now)?;
                        }
                        if !same_page(&now, url) {
                            let r = page.page.goto(url).await;
                            page.checked(r).await
                        } else {
                            guard.check_url(&now)
                        }
                    };
                    return match ready.await {
                        Ok(()) => Ok(page),
                        Err(e) => {
                            // Not started after all: the tab gets its freedom back now.
                            page.close(&Err::<(), _>(e.clone())).await;
                            Err(e)
                        }
                    };
                }
                Err(deskhand_browser::Error::Extension { code, message })
                    if code == "not_connected" && fallback_headless =>
                {
                    tracing::info!(%message, "the extension is not connected: running headless instead");
                }
                Err(e) => return Err(StepError::from(e)),
            }
        }
        let (browser, page) = guard.env.browsers.page().await?;
        let blocked = Arc::new(Mutex::new(Vec::new()));
        let post_check = match page
            .intercept_navigation(guard.navigation_hook(Arc::clone(&blocked)))
            .await
        {
            Ok(()) => false,
            Err(deskhand_browser::Error::Unsupported(_)) => true,
            Err(e) => {
                let _ = page.close().await;
                return Err(StepError::from(e));
            }
        };
        Ok(GuardedPage {
            guard,
            browser: Some(browser),
            page,
            blocked,
            post_check,
            filter: None,
        })
    }

    /// Load the start page (an extension tab is there already).
    pub async fn start(&self, url: &str) -> Result<(), StepError> {
        if self.page.is_extension_tab() {
            return Ok(());
        }
        let r = self.page.goto(url).await;
        self.checked(r).await
    }

    /// After an action: a refusal wins over whatever error the blocked load caused.
    pub async fn checked<T>(&self, r: Result<T, deskhand_browser::Error>) -> Result<T, StepError> {
        if let Some(why) = self
            .blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
        {
            return Err(StepError::Refused {
                what: "navigation".into(),
                target: String::new(),
                why: format!("the page tried to leave its allowed origins: {why}"),
            });
        }
        if !self.page.popups_guarded() {
            return Err(StepError::Refused {
                what: "popup".into(),
                target: String::new(),
                why: "the guard lost its hold on windows this page opens (its connection to \
                      Chromium dropped); the step stops"
                    .into(),
            });
        }
        if self.post_check {
            // Where the tab is now, even when the action failed: a load the filters blocked
            // fails too, and its refusal is the better answer.
            match self.page.url().await {
                Ok(now) => self.guard.check_url(&now)?,
                Err(e) if r.is_ok() => return Err(StepError::from(e)),
                Err(_) => {}
            }
        }
        r.map_err(StepError::from)
    }

    pub async fn close(self, result: &Result<impl Sized, StepError>) {
        if let Some(f) = self.filter {
            f.lift().await;
        }
        let _ = self.page.close().await;
        if let (Err(StepError::BrowserCrashed(_)), Some(browser)) = (result, &self.browser) {
            self.guard.env.browsers.forget(browser).await;
        }
    }
}

impl GuardedPage<'_> {
    /// The page, for the action's own work (its navigation stays under the guard's watch).
    pub fn page(&self) -> &Page {
        &self.page
    }
}

impl Guard {
    /// Open the page a browser action works on: `url` in the agent's headless Chromium, or with
    /// `target` `tab:…` in a tab of the person's browser through the extension (`fallback_headless`:
    /// run headless when the extension is not connected). Refused unless the policy allows `url`.
    pub async fn page(
        &self,
        url: &str,
        target: &str,
        fallback_headless: bool,
    ) -> Result<GuardedPage<'_>, StepError> {
        GuardedPage::open(self, url, target, fallback_headless).await
    }

    /// Print a document this agent made (`slides.write`'s deck: everything inline, a CSP that
    /// loads nothing) to PDF on paper `size` inches, in the agent's own headless Chromium. It is
    /// written into a blank page, so no site is visited and nothing is fetched.
    pub async fn print_pdf(&self, html: &str, size: (f64, f64)) -> Result<Vec<u8>, StepError> {
        let (browser, page) = self.env.browsers.page().await?;
        let doc =
            serde_json::to_string(html).map_err(|e| StepError::Fatal(format!("printing: {e}")))?;
        let printed = async {
            page.eval(&format!(
                "(async () => {{ document.open(); document.write({doc}); document.close(); \
                 await document.fonts.ready; return true; }})()"
            ))
            .await?;
            page.pdf(size.0, size.1).await
        }
        .await;
        let _ = page.close().await;
        if matches!(printed, Err(deskhand_browser::Error::BrowserGone(_))) {
            self.env.browsers.forget(&browser).await;
        }
        printed.map_err(StepError::from)
    }
}

/// Is the tab already showing this page (fragments aside)?
fn same_page(now: &str, want: &str) -> bool {
    let strip = |u: &str| {
        u.split('#')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string()
    };
    !want.is_empty() && strip(now) == strip(want)
}

//! One shared Chromium for the agent's browser steps: started on first use, each step gets its own
//! isolated context (separate cookies, same process: ~450 MiB once, not per job), and a browser that
//! crashed is replaced on the next use.

use std::sync::Arc;

use deskhand_browser::{Browser, LaunchOptions, Page};
use tokio::sync::Mutex;

/// Lazily started, self-healing shared browser.
pub struct BrowserPool {
    opts: LaunchOptions,
    current: Mutex<Option<Arc<Browser>>>,
}

impl BrowserPool {
    /// A pool that launches with `opts` (CDP is required for parallel pages).
    pub fn new(mut opts: LaunchOptions) -> Self {
        // Over CDP the guard intercepts popups too (they open paused and carry the page's
        // check). WebDriver has no interception: there, window.open and target=_blank open
        // nothing, so a page cannot reach an origin through a window the guard does not see.
        if opts.backend == deskhand_browser::Backend::WebDriver {
            opts.extra_args.push("--block-new-web-contents".into());
        }
        BrowserPool {
            opts,
            current: Mutex::new(None),
        }
    }

    /// How long actions wait for their element, and navigations for their page.
    pub fn timeouts(&self) -> (std::time::Duration, std::time::Duration) {
        (self.opts.action_timeout, self.opts.navigation_timeout)
    }

    /// A fresh isolated page, starting (or restarting) Chromium if needed.
    pub async fn page(&self) -> Result<(Arc<Browser>, Page), deskhand_browser::Error> {
        let browser = {
            let mut cur = self.current.lock().await;
            match cur.as_ref() {
                Some(b) => Arc::clone(b),
                None => {
                    let b = Arc::new(Browser::launch(self.opts.clone()).await?);
                    *cur = Some(Arc::clone(&b));
                    b
                }
            }
        };
        let page = match self.opts.backend {
            deskhand_browser::Backend::Cdp => browser.new_isolated_page().await,
            deskhand_browser::Backend::WebDriver => browser.new_page().await,
        };
        match page {
            Ok(p) => Ok((browser, p)),
            Err(e) => {
                self.forget(&browser).await;
                Err(e)
            }
        }
    }

    /// Drop a browser that failed (crashed); the next `page()` starts a new one.
    pub async fn forget(&self, browser: &Arc<Browser>) {
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_some_and(|b| Arc::ptr_eq(b, browser)) {
            *cur = None;
        }
    }

    /// Close the browser if one is running.
    pub async fn shutdown(&self) {
        if let Some(b) = self.current.lock().await.take() {
            if let Ok(b) = Arc::try_unwrap(b) {
                let _ = b.close().await;
            }
        }
    }
}

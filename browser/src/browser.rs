//! `Browser`: one Chromium process and the connection that drives it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::cdp::CdpBrowser;
use crate::launch::{find_chromedriver, start_chromium, Backend, ChromiumProcess, LaunchOptions};
use crate::page::{Driver, Page};
use crate::webdriver::{WdBrowser, WdPage};
use crate::{Error, Result};

enum Inner {
    Cdp(Box<CdpBrowser>),
    WebDriver(Option<WdBrowser>),
}

/// A running Chromium driven over CDP or WebDriver. Dropping it kills the browser (and any
/// chromedriver) at once; [`Browser::close`] shuts down gracefully first.
pub struct Browser {
    // Order matters for Drop: the connection goes first, then the process, then its temp profile.
    inner: Mutex<Inner>,
    process: Arc<std::sync::Mutex<ChromiumProcess>>,
    opts: LaunchOptions,
    page_taken: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("backend", &self.opts.backend)
            .field("pid", &self.pid())
            .finish()
    }
}

impl Browser {
    /// Start Chromium with `opts` and connect the chosen backend.
    pub async fn launch(opts: LaunchOptions) -> Result<Browser> {
        let o = opts.clone();
        let process = tokio::task::spawn_blocking(move || start_chromium(&o))
            .await
            .map_err(|e| Error::LaunchFailed {
                program: "chromium".into(),
                reason: e.to_string(),
                stderr: String::new(),
            })??;
        let inner = match opts.backend {
            Backend::Cdp => Inner::Cdp(Box::new(CdpBrowser::connect(&process.ws_url).await?)),
            Backend::WebDriver => {
                let driver = find_chromedriver(opts.chromedriver.as_deref())?;
                let wd = WdBrowser::connect(
                    &driver,
                    &process.debugger_address(),
                    opts.launch_timeout,
                    opts.navigation_timeout,
                )
                .await?;
                Inner::WebDriver(Some(wd))
            }
        };
        Ok(Browser {
            inner: Mutex::new(inner),
            process: Arc::new(std::sync::Mutex::new(process)),
            opts,
            page_taken: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Which backend drives this browser.
    pub fn backend(&self) -> Backend {
        self.opts.backend
    }

    /// Process id of the Chromium main process (its process group holds all its children).
    pub fn pid(&self) -> u32 {
        self.process.lock().map(|p| p.child.pid()).unwrap_or(0)
    }

    /// The profile folder in use.
    pub fn profile_dir(&self) -> std::path::PathBuf {
        self.process
            .lock()
            .map(|p| p.profile.path().to_path_buf())
            .unwrap_or_default()
    }

    /// Stop the service workers whose script URL starts with `prefix` (an extension's, say), as
    /// the browser does when they are idle. CDP only. Returns how many were stopped.
    pub async fn stop_service_workers(&self, prefix: &str) -> Result<usize> {
        match &*self.inner.lock().await {
            Inner::Cdp(b) => b.stop_workers(prefix).await,
            _ => Err(Error::Unsupported(
                "stopping service workers needs the CDP backend".into(),
            )),
        }
    }

    /// A new tab in the default browser context (shares cookies with the profile).
    pub async fn new_page(&self) -> Result<Page> {
        self.open_page(false).await
    }

    /// A new tab in its own browser context: separate cookies and storage, same process. Use this
    /// for parallel work instead of starting another browser (each costs ~450 MiB).
    pub async fn new_isolated_page(&self) -> Result<Page> {
        self.open_page(true).await
    }

    /// A new tab opened by the browser itself at `url`: for pages a web page may not navigate
    /// to, such as an extension's own (`chrome-extension://…/popup.html`). CDP only.
    pub async fn new_page_at(&self, url: &str) -> Result<Page> {
        let inner = self.inner.lock().await;
        let Inner::Cdp(b) = &*inner else {
            return Err(Error::Unsupported(
                "opening a tab at a URL needs the CDP backend".into(),
            ));
        };
        Ok(Page::new(
            Driver::Cdp(b.new_page(false, url).await?),
            self.opts.action_timeout,
            self.opts.navigation_timeout,
            Arc::clone(&self.process),
        ))
    }

    async fn open_page(&self, isolated: bool) -> Result<Page> {
        let inner = self.inner.lock().await;
        let driver = match &*inner {
            Inner::Cdp(b) => Driver::Cdp(b.new_page(isolated, "about:blank").await?),
            Inner::WebDriver(Some(wd)) => {
                if self
                    .page_taken
                    .swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    return Err(Error::Unsupported(
                        "the WebDriver backend drives one tab per browser; launch another browser or use the CDP backend".into(),
                    ));
                }
                Driver::WebDriver(WdPage {
                    client: wd.client.clone(),
                })
            }
            Inner::WebDriver(None) => return Err(Error::BrowserGone("closed".into())),
        };
        Ok(Page::new(
            driver,
            self.opts.action_timeout,
            self.opts.navigation_timeout,
            Arc::clone(&self.process),
        ))
    }

    /// Close gracefully (lets Chromium flush a persistent profile), then make sure every process is gone.
    pub async fn close(self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        match &mut *inner {
            Inner::Cdp(b) => b.close().await,
            Inner::WebDriver(wd) => {
                if let Some(wd) = wd.take() {
                    wd.close().await;
                }
                // chromedriver only attached to our Chromium; ask it to exit like a window close would.
                if let Ok(p) = self.process.lock() {
                    terminate(p.child.pid());
                }
            }
        }
        drop(inner);
        let process = Arc::clone(&self.process);
        tokio::task::spawn_blocking(move || {
            if let Ok(mut p) = process.lock() {
                p.child.shutdown(Duration::from_secs(3));
            }
        })
        .await
        .ok();
        Ok(())
    }
}

#[allow(unsafe_code)]
fn terminate(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

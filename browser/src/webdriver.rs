//! The WebDriver backend: chromedriver + fantoccini, attached to the Chromium we started.
//!
//! We start Chromium ourselves (same flags, same profile handling, same no-orphan guarantees as CDP)
//! and let chromedriver attach through `goog:chromeOptions.debuggerAddress`. One WebDriver session
//! drives one tab, so this backend offers one page per browser.

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::elements::{Element, ElementRef};
use fantoccini::wd::TimeoutConfiguration;
use serde_json::{json, Value};

use crate::process::ChildGuard;
use crate::script::SCRIPT;
use crate::{Error, Result};

fn wd_err(e: fantoccini::error::CmdError) -> Error {
    let msg = e.to_string();
    if msg.contains("disconnected")
        || msg.contains("target window already closed")
        || msg.contains("no such window")
        || msg.contains("invalid session id")
        || msg.contains("chrome not reachable")
    {
        Error::BrowserGone(msg)
    } else if let fantoccini::error::CmdError::Standard(w) = &e {
        if w.error() == "javascript error" {
            return Error::Script(w.message.to_string());
        }
        Error::Protocol {
            backend: "webdriver",
            message: msg,
        }
    } else {
        Error::Protocol {
            backend: "webdriver",
            message: msg,
        }
    }
}

/// chromedriver plus one session attached to our Chromium.
pub(crate) struct WdBrowser {
    pub(crate) client: fantoccini::Client,
    driver: ChildGuard,
}

impl WdBrowser {
    pub(crate) async fn connect(
        chromedriver: &std::path::Path,
        debugger_address: &str,
        launch_timeout: Duration,
        page_load: Duration,
    ) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = Command::new(chromedriver);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg("--log-level=WARNING");
        let (driver, _lines) =
            ChildGuard::spawn("chromedriver", cmd).map_err(|e| Error::LaunchFailed {
                program: format!("chromedriver ({})", chromedriver.display()),
                reason: e.to_string(),
                stderr: String::new(),
            })?;
        let base = format!("http://127.0.0.1:{port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "debuggerAddress": debugger_address }),
        );
        caps.insert("pageLoadStrategy".into(), json!("normal"));
        let started = Instant::now();
        // chromedriver is usually ready in < 50 ms; retry the session until it answers.
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let attempt = fantoccini::ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&base)
                .await;
            match attempt {
                Ok(c) => break c,
                Err(e) => {
                    if started.elapsed() > launch_timeout {
                        return Err(Error::LaunchFailed {
                            program: "chromedriver".into(),
                            reason: format!("no WebDriver session within {launch_timeout:?}: {e}"),
                            stderr: driver.output_tail(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(60)),
                Some(page_load),
                Some(Duration::ZERO),
            ))
            .await
            .map_err(wd_err)?;
        Ok(WdBrowser { client, driver })
    }

    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.client.close()).await;
        let mut driver = self.driver;
        driver.kill();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("127.0.0.1:0", e))?;
    let port = l
        .local_addr()
        .map_err(|e| Error::io("127.0.0.1:0", e))?
        .port();
    Ok(port)
}

/// The one tab of a WebDriver session.
pub(crate) struct WdPage {
    pub(crate) client: fantoccini::Client,
}

impl WdPage {
    pub(crate) async fn goto(&self, url: &str, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout + Duration::from_secs(1), self.client.goto(url)).await {
            Err(_) => Err(Error::Navigation {
                url: url.into(),
                reason: format!("the page did not load within {timeout:?}"),
            }),
            Ok(Err(e)) => Err(match wd_err(e) {
                Error::Protocol { message, .. } => Error::Navigation {
                    url: url.into(),
                    reason: message,
                },
                other => other,
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    pub(crate) async fn eval(&self, expression: String) -> Result<Value> {
        let body = format!("return ({expression});");
        self.client.execute(&body, vec![]).await.map_err(wd_err)
    }

    /// WebDriver has no "script on every new document", so each call carries the script; it is
    /// installed once per document and the rest of the expression is cheap.
    pub(crate) async fn call(&self, method: &str, args: &str) -> Result<Value> {
        let body = format!(
            "const api = (globalThis.__deskhand && globalThis.__deskhand.version === 1) ? globalThis.__deskhand : {};\nreturn api.{method}({args});",
            SCRIPT.trim_end().trim_end_matches(';')
        );
        self.client.execute(&body, vec![]).await.map_err(wd_err)
    }

    pub(crate) async fn click_at(&self, x: f64, y: f64) -> Result<()> {
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo {
                duration: None,
                x: x.round(),
                y: y.round(),
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(mouse).await.map_err(wd_err)?;
        Ok(())
    }

    /// Press at `from`, move to `to` over a fifth of a second (the driver sends the moves in
    /// between), release.
    pub(crate) async fn drag(&self, from: (f64, f64), to: (f64, f64)) -> Result<()> {
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo {
                duration: None,
                x: from.0.round(),
                y: from.1.round(),
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::MoveTo {
                duration: Some(std::time::Duration::from_millis(200)),
                x: to.0.round(),
                y: to.1.round(),
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(mouse).await.map_err(wd_err)?;
        Ok(())
    }

    /// Viewport PNG, or the element's PNG when a marked element is given.
    /// The page printed to PDF (W3C "Print Page") on paper of this size (inches), no margins.
    pub(crate) async fn pdf(&self, width_in: f64, height_in: f64) -> Result<Vec<u8>> {
        use fantoccini::wd::{PrintConfiguration, PrintMargins, PrintSize};
        let cm = 2.54;
        let config = PrintConfiguration::builder()
            .size(PrintSize {
                width: width_in * cm,
                height: height_in * cm,
            })
            .margins(PrintMargins {
                top: 0.0,
                bottom: 0.0,
                left: 0.0,
                right: 0.0,
            })
            .background(true)
            .shrink_to_fit(false)
            .build()
            .map_err(|e| Error::Invalid(format!("paper size: {e:?}")))?;
        self.client.print(config).await.map_err(wd_err)
    }

    pub(crate) async fn screenshot(&self, element_marker: Option<&str>) -> Result<Vec<u8>> {
        match element_marker {
            None => self.client.screenshot().await.map_err(wd_err),
            Some(marker) => {
                let v = self
                    .client
                    .execute(&format!("return globalThis.__deskhandPick && globalThis.__deskhandPick[{marker:?}];"), vec![])
                    .await
                    .map_err(wd_err)?;
                let id = v
                    .as_object()
                    .and_then(|o| o.values().next())
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| Error::Script("the element to screenshot disappeared".into()))?;
                let el =
                    Element::from_element_id(self.client.clone(), ElementRef::from(id.to_string()));
                el.screenshot().await.map_err(wd_err)
            }
        }
    }

    pub(crate) async fn html(&self) -> Result<String> {
        self.client.source().await.map_err(wd_err)
    }

    pub(crate) async fn url(&self) -> Result<String> {
        Ok(self.client.current_url().await.map_err(wd_err)?.to_string())
    }
}

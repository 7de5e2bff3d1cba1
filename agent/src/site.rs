//! A static file server on loopback: serves the bundled fixture site for the demo and the tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A running static server; stops when dropped.
#[derive(Debug)]
pub struct StaticSite {
    /// Where it listens (127.0.0.1 and a free port).
    pub addr: SocketAddr,
    /// Requests served so far (tests check that a refused navigation never arrived).
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The path and query of every request served, in order.
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StaticSite {
    /// Serve `dir` on 127.0.0.1 at a free port.
    pub async fn serve(dir: &Path) -> std::io::Result<StaticSite> {
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not a folder to serve", dir.display()),
            ));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&hits);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let app = axum::Router::new()
            .route("/slow/{ms}", axum::routing::get(slow))
            .route("/never", axum::routing::get(never))
            .route("/redirect", axum::routing::get(redirect))
            .fallback_service(tower_http::services::ServeDir::new(dir))
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if let Some(pq) = req.uri().path_and_query() {
                        log.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(pq.to_string());
                    }
                    next.run(req)
                },
            ));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StaticSite {
            addr,
            hits,
            seen,
            task,
        })
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A page that answers after `ms` milliseconds (for load-timeout behaviour).
async fn slow(axum::extract::Path(ms): axum::extract::Path<u64>) -> axum::response::Html<String> {
    tokio::time::sleep(std::time::Duration::from_millis(ms.min(60_000))).await;
    axum::response::Html(format!(
        "<title>slow</title><p id=slow>answered after {ms} ms</p>"
    ))
}

/// `/redirect?to=URL`: a 302 to anywhere (for "a redirect to a non-allowed origin").
async fn redirect(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match q.get("to") {
        Some(to) => (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, to.clone())],
        )
            .into_response(),
        None => axum::http::StatusCode::BAD_REQUEST.into_response(),
    }
}

/// A page that never answers (for "a page that never loads").
async fn never() -> &'static str {
    std::future::pending::<()>().await;
    ""
}

/// The bundled fixture site: `fixtures/sites` next to the workspace root (or `$DESKHAND_FIXTURES`).
pub fn fixture_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("DESKHAND_FIXTURES") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sites")
}

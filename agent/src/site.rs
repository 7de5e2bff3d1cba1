//! A static file server on loopback: serves a folder (the tests' fixture site) or files embedded
//! in the binary (the demo's pages, so an installed `deskhand demo` needs no source tree).

use std::net::SocketAddr;
use std::path::Path;

use axum::response::IntoResponse;

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
        StaticSite::start(
            axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir)),
        )
        .await
    }

    /// Serve files embedded in the binary (an `include_dir!` folder) from memory, on 127.0.0.1
    /// at a free port. A path ending in `/` serves its `index.html`.
    pub async fn serve_embedded(
        files: &'static include_dir::Dir<'static>,
    ) -> std::io::Result<StaticSite> {
        StaticSite::start(
            axum::Router::new().fallback(move |uri: axum::http::Uri| embedded_file(files, uri)),
        )
        .await
    }

    /// Listen on a free loopback port: the test routes, then `files` for everything else.
    async fn start(files: axum::Router) -> std::io::Result<StaticSite> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&hits);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let app = files
            .route("/slow/{ms}", axum::routing::get(slow))
            .route("/never", axum::routing::get(never))
            .route("/redirect", axum::routing::get(redirect))
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

/// One embedded file by its URL path, with the content type its extension names.
async fn embedded_file(
    files: &'static include_dir::Dir<'static>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let decoded = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    let mut path = decoded.trim_start_matches('/').to_string();
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    // Lookups compare whole relative paths, so `..` or an absolute path matches nothing.
    match files.get_file(&path) {
        Some(file) => {
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    mime.essence_str().to_owned(),
                )],
                file.contents(),
            )
                .into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
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

#[cfg(test)]
mod tests {
    use super::*;

    static PAGES: include_dir::Dir<'static> =
        include_dir::include_dir!("$CARGO_MANIFEST_DIR/../fixtures/sites");

    #[tokio::test]
    async fn embedded_files_are_served_from_memory() {
        let site = StaticSite::serve_embedded(&PAGES).await.unwrap();
        let get = |path: &str| reqwest::get(site.url(path));
        let page = get("products/page-1.html").await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html");
        assert_eq!(
            page.bytes().await.unwrap(),
            PAGES.get_file("products/page-1.html").unwrap().contents()
        );
        let index = get("").await.unwrap();
        assert_eq!(index.status(), 200);
        assert_eq!(index.headers()["content-type"], "text/html");
        let png = get("img/p1.png").await.unwrap();
        assert_eq!(png.headers()["content-type"], "image/png");
        // An encoded `..` reaches the server intact and still matches nothing.
        for missing in ["nope.html", "products/%2E%2E%2Fsignup.html"] {
            assert_eq!(get(missing).await.unwrap().status(), 404, "{missing}");
        }
        // The test routes are there too.
        assert_eq!(get("redirect").await.unwrap().status(), 400);
    }
}

//! Clicking, scrolling, screenshots and navigation failures, on both backends.

use crate::util::free_port;
use deskhand_browser::{Error, Locator, ScrollStop, ScrollUntil, Shot};

fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (w, h)
}

both_backends! {
    async fn clicks_reach_div_buttons_links_and_wait_for_enabled(h) {
        h.open("widgets.html").await;
        h.page.click(&Locator::clickable("Save draft").unwrap()).await.unwrap();
        assert_eq!(h.js("document.getElementById('w-status').textContent").await, "draft saved");
        h.page.click(&Locator::clickable("Preview").unwrap()).await.unwrap();
        assert_eq!(h.js("document.getElementById('w-status').textContent").await, "preview shown");
        // Disabled for its first 300 ms: the click waits rather than failing.
        h.open("widgets.html").await;
        let r = h.page.click(&Locator::clickable("role=button[name=\"Publish\"]").unwrap()).await.unwrap();
        assert!(!r.navigated);
        assert_eq!(h.js("document.getElementById('w-status').textContent").await, "published");
    }

    async fn a_click_that_would_land_elsewhere_is_swallowed_and_retried(h) {
        h.open("moving.html").await;
        h.page.click(&Locator::clickable("Confirm order").unwrap()).await.unwrap();
        // The banner appeared under the pointer; its button must never have received the press.
        assert_eq!(h.js("document.getElementById('status').textContent").await, "confirmed");
        assert_eq!(h.page.count("#danger").await.unwrap(), 1, "the banner did appear");
    }

    async fn a_press_whose_release_lands_elsewhere_is_retried(h) {
        h.open("shifting.html").await;
        h.page.click(&Locator::clickable("Archive").unwrap()).await.unwrap();
        assert_eq!(h.js("document.getElementById('status').textContent").await, "archived");
        // The first press moved the button away before its release; the second one clicked it.
        assert_eq!(h.js("document.getElementById('presses').textContent").await, "2");
    }

    async fn clicking_a_link_waits_for_the_next_page(h) {
        h.open("products/page-1.html").await;
        let r = h.page.click(&Locator::clickable("Next").unwrap()).await.unwrap();
        assert!(r.navigated);
        assert!(r.url.ends_with("page-2.html"), "{}", r.url);
        assert_eq!(h.page.count("li.product").await.unwrap(), 10);
    }

    async fn infinite_scroll_until_count_then_until_the_end(h) {
        h.open("feed.html").await;
        let r = h.page.scroll_until(&ScrollUntil::new("article.feed-item", Some(35))).await.unwrap();
        assert_eq!(r.stopped, ScrollStop::CountReached);
        assert!(r.items >= 35, "{r:?}");
        let mut until_end = ScrollUntil::new("article.feed-item", None);
        until_end.idle = std::time::Duration::from_millis(2000);
        let r = h.page.scroll_until(&until_end).await.unwrap();
        assert_eq!(r.stopped, ScrollStop::NoNewItems);
        assert_eq!(r.items, 100);
        assert_eq!(h.page.count("#feed-end").await.unwrap(), 1);
        // Scrolling to an element and by an amount.
        h.page.scroll_to(&Locator::Css { value: "article.feed-item[data-i='3']".into() }).await.unwrap();
        let (_, y1) = h.page.scroll_by(0.0, 200.0).await.unwrap();
        assert!(y1 > 0.0);
    }

    async fn screenshots_of_viewport_and_element(h) {
        h.open("table.html").await;
        let full = h.page.screenshot(&Shot::Viewport).await.unwrap();
        let (w, hh) = png_size(&full);
        assert!(w >= 800 && hh >= 600, "{w}x{hh}");
        let el = h.page.screenshot(&Shot::Element(Locator::Css { value: "#people".into() })).await.unwrap();
        let (ew, eh) = png_size(&el);
        assert!(ew < w && eh < hh && ew > 50 && eh > 20, "element shot {ew}x{eh}");
    }

    async fn unreachable_and_never_loading_pages_fail_clearly(h) {
        let refused = format!("http://127.0.0.1:{}/", free_port());
        match h.page.goto(&refused).await {
            Err(Error::Navigation { reason, .. }) => assert!(reason.contains("ERR_CONNECTION_REFUSED") || reason.contains("refused"), "{reason}"),
            Ok(()) if h.browser.backend() == deskhand_browser::Backend::WebDriver => {
                // chromedriver reports an error page as a successful load; the page says why.
                assert!(h.js("document.documentElement.innerText").await.contains("refused"));
            }
            other => panic!("{other:?}"),
        }
        // A missing element fails with what was looked for, after the timeout, and the page keeps working.
        h.open("widgets.html").await;
        let mut slow = deskhand_browser::FillRequest::default();
        slow.fields.push(("No such field".into(), serde_json::json!("x")));
        assert!(h.page.fill(&slow).await.is_err());
        assert_eq!(h.page.count("#w-status").await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_page_that_never_loads_times_out_with_the_url() {
    let h = crate::util::Harness::with(deskhand_browser::Backend::Cdp, |o| {
        o.navigation_timeout = std::time::Duration::from_secs(2)
    })
    .await;
    let url = h.site.url("never");
    let started = std::time::Instant::now();
    let err = h.page.goto(&url).await.unwrap_err();
    assert!(matches!(err, Error::Navigation { .. }), "{err}");
    assert!(
        err.to_string().contains(&url) && err.to_string().contains("did not load"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The browser is still usable afterwards.
    h.open("table.html").await;
    assert_eq!(h.page.count("#people").await.unwrap(), 1);
}

#[tokio::test]
async fn isolated_pages_share_one_browser_without_sharing_storage() {
    let h = crate::util::Harness::start(deskhand_browser::Backend::Cdp).await;
    let a = h.browser.new_isolated_page().await.unwrap();
    let b = h.browser.new_isolated_page().await.unwrap();
    let url = h.site.url("table.html");
    let (ra, rb) = tokio::join!(a.goto(&url), b.goto(&url));
    ra.unwrap();
    rb.unwrap();
    a.eval("localStorage.setItem('who', 'a')").await.unwrap();
    assert_eq!(
        b.eval("localStorage.getItem('who')").await.unwrap(),
        serde_json::Value::Null
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Windows a guarded page opens (link, `window.open`, form, each from a real click) are held
/// paused until they carry the page's check: refused ones never send a request, allowed ones load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn popups_of_a_guarded_page_are_checked_before_their_first_request() {
    use crate::util::{fixture_dir, StaticSite};
    use deskhand_browser::{Browser, LaunchOptions, NavigationSource};
    use std::sync::{atomic::Ordering, Arc, Mutex};
    let site = StaticSite::serve(&fixture_dir()).await.unwrap();
    let evil = StaticSite::serve(&fixture_dir()).await.unwrap();
    let browser = Browser::launch(LaunchOptions::default()).await.unwrap();
    let page = browser.new_isolated_page().await.unwrap();
    let checked: Arc<Mutex<Vec<(String, NavigationSource)>>> = Arc::default();
    let (log, allowed) = (Arc::clone(&checked), site.url(""));
    page.intercept_navigation(Arc::new(move |url: &str, source| {
        log.lock().unwrap().push((url.to_string(), source));
        url.starts_with(&allowed)
    }))
    .await
    .unwrap();
    let popups_to = |needle: String| {
        checked
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, s)| *s == NavigationSource::Popup && u.contains(&needle))
            .count()
    };
    let to = evil.url("stolen");
    page.goto(&site.url(&format!("attacks/popup-click.html?to={to}")))
        .await
        .unwrap();
    for (i, text) in ["Open link", "Open window", "Send form"].iter().enumerate() {
        page.click(&Locator::clickable(text).unwrap())
            .await
            .unwrap();
        let n = crate::util::eventually(std::time::Duration::from_secs(10), || async {
            (popups_to(evil.addr.to_string()) > i).then_some(())
        })
        .await;
        assert!(
            n.is_some(),
            "{text}: no popup checked: {:?} evil hits {}",
            checked.lock().unwrap(),
            evil.hits.load(Ordering::SeqCst)
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        evil.hits.load(Ordering::SeqCst),
        0,
        "a refused popup sent a request"
    );
    let page2 = site.url("products/page-2.html");
    page.goto(&site.url(&format!("attacks/popup-click.html?to={page2}")))
        .await
        .unwrap();
    page.click(&Locator::clickable("Open link").unwrap())
        .await
        .unwrap();
    let loaded = crate::util::eventually(std::time::Duration::from_secs(10), || async {
        let seen = site.seen.lock().unwrap().clone();
        seen.iter()
            .any(|p| p.ends_with("page-2.html?via=link"))
            .then_some(())
    })
    .await;
    assert!(loaded.is_some(), "{:?}", site.seen.lock().unwrap());
    assert!(popups_to("page-2.html?via=link".into()) >= 1);
    browser.close().await.unwrap();
}

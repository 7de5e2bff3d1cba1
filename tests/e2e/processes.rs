//! No leaked processes: every Chromium and chromedriver ends with its handle — on drop, on panic,
//! and when our own process is SIGKILLed. Also: a missing Chromium, a crashed Chromium.

use std::time::Duration;

use crate::util::{temp, wait_gone, Harness};
use deskhand_browser::{Backend, Browser, Error, LaunchOptions};

async fn launched_then_dropped(backend: Backend) {
    let b = Browser::launch(LaunchOptions {
        backend,
        ..Default::default()
    })
    .await
    .unwrap();
    let profile = b.profile_dir();
    let needle = profile.to_string_lossy().to_string();
    let _page = b.new_page().await.unwrap();
    assert!(
        !crate::util::processes_mentioning(&needle).is_empty(),
        "chromium should be running"
    );
    drop(_page);
    drop(b);
    assert_eq!(
        wait_gone(&needle, Duration::from_secs(3)),
        Vec::<u32>::new(),
        "processes survived the drop"
    );
    assert!(!profile.exists(), "temp profile left behind");
}

#[tokio::test]
async fn drop_ends_every_process_cdp() {
    launched_then_dropped(Backend::Cdp).await;
}

#[tokio::test]
async fn drop_ends_every_process_webdriver() {
    launched_then_dropped(Backend::WebDriver).await;
    // chromedriver is ours too: none of ours may be left (it runs with --allowed-ips and our port).
}

#[tokio::test]
async fn graceful_close_ends_every_process_and_keeps_a_persistent_profile() {
    let dir = temp();
    let profile = dir.path().join("profile");
    for backend in [Backend::Cdp, Backend::WebDriver] {
        let b = Browser::launch(LaunchOptions {
            backend,
            profile: Some(profile.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        b.close().await.unwrap();
        let needle = profile.to_string_lossy().to_string();
        assert!(wait_gone(&needle, Duration::from_secs(3)).is_empty());
        assert!(
            profile.join("Default").is_dir() || profile.join("Local State").exists(),
            "profile kept"
        );
    }
}

#[test]
fn a_panic_while_holding_the_browser_ends_it() {
    let profile_holder = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let holder = profile_holder.clone();
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let b = Browser::launch(LaunchOptions::default()).await.unwrap();
            *holder.lock().unwrap() = b.profile_dir().to_string_lossy().to_string();
            let _page = b.new_page().await.unwrap();
            panic!("boom while the browser is open");
        })
    })
    .join();
    assert!(result.is_err(), "the thread panicked");
    let needle = profile_holder.lock().unwrap().clone();
    assert!(!needle.is_empty());
    assert!(
        wait_gone(&needle, Duration::from_secs(3)).is_empty(),
        "processes survived the panic"
    );
}

#[test]
fn sigkill_of_the_agent_takes_chromium_with_it() {
    let dir = temp();
    let profile = dir.path().join("p");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let site = rt
        .block_on(crate::util::StaticSite::serve(&crate::util::fixture_dir()))
        .unwrap();
    // The page never finishes loading, so the CLI is mid-job when we kill it.
    let mut child = crate::util::deskhand()
        .args(["browse", "--profile"])
        .arg(&profile)
        .args([
            "click",
            &rt.block_on(async { site.url("never") }),
            "Anything",
        ])
        .env("DESKHAND_WORKSPACE", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let needle = profile.to_string_lossy().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while crate::util::processes_mentioning(&needle).len() < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        crate::util::processes_mentioning(&needle).len() >= 2,
        "chromium did not start"
    );
    child.kill().unwrap(); // SIGKILL: no destructors run in the agent.
    child.wait().unwrap();
    assert_eq!(
        wait_gone(&needle, Duration::from_secs(5)),
        Vec::<u32>::new(),
        "chromium outlived a SIGKILLed agent"
    );
    drop(site);
}

#[tokio::test]
async fn a_missing_chromium_says_how_to_install_it() {
    let err = Browser::launch(LaunchOptions {
        chrome_override: Some("/nonexistent/chromium".into()),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ChromiumMissing { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/chromium") && msg.contains("apt-get install -y chromium"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_binary_that_is_not_chromium_fails_with_its_output() {
    let dir = temp();
    let fake = dir.path().join("fake-chrome");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'this is not chromium' >&2\nexit 3\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&fake).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = Browser::launch(LaunchOptions {
        chrome_override: Some(fake),
        ..Default::default()
    })
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("did not start") && msg.contains("this is not chromium"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_chromium_crash_mid_session_is_reported_as_such() {
    let h = Harness::start(Backend::Cdp).await;
    h.open("table.html").await;
    let pid = h.browser.pid();
    // Kill the browser's whole process group from outside, like a crash would.
    deskhand_browser::process::kill_group(pid);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while deskhand_browser::process::pid_alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = h.page.count("table").await.unwrap_err();
    assert!(matches!(err, Error::BrowserGone(_)), "{err}");
    assert!(err.to_string().contains("crashed or was closed"), "{err}");
    // A new browser works at once.
    let again = Harness::start(Backend::Cdp).await;
    again.open("table.html").await;
    assert_eq!(again.page.count("table").await.unwrap(), 2);
}

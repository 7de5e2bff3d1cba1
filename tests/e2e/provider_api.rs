//! The connectors library against the fake providers, below the CLI: Notion writes, paging and
//! its rate limit, Gmail's three message formats, and the loopback listener's `state` check.

use std::sync::Arc;
use std::time::Duration;

use deskhand_connectors::gmail::{Format, MailMessage};
use deskhand_connectors::{
    Cache, ClientCredentials, ConnectionId, ConnectorError, Endpoints, Hub, Provider, RetryPolicy,
    Secrets, Settings,
};
use deskhand_fake_providers::{FakeData, FakeProviders, Fault};
use serde_json::json;

const TOKEN: &str = "ntn_provider_api_test_token";

struct Lib {
    fake: FakeProviders,
    hub: Hub,
    _dir: tempfile::TempDir,
}

async fn lib(notion_rate: u32) -> Lib {
    let fake = FakeProviders::start(FakeData::bundled().unwrap())
        .await
        .unwrap();
    fake.handle().register_client("lib-test", "lib-secret");
    fake.handle().add_internal_token(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let secrets = Arc::new(Secrets::encrypted_file(dir.path(), KEY).unwrap());
    let cache = Arc::new(Cache::open(&dir.path().join("cache.db")).unwrap());
    let settings = Settings {
        endpoints: Endpoints::under(&url::Url::parse(&fake.base_url()).unwrap()),
        notion_rate,
        retry: RetryPolicy {
            max_attempts: 5,
            base_delay_ms: 10,
            max_delay_ms: 100,
            max_total_ms: 10_000,
        },
        ..Settings::default()
    };
    let hub = Hub::new(cache, secrets, settings);
    Lib {
        fake,
        hub,
        _dir: dir,
    }
}

fn notion_id() -> ConnectionId {
    ConnectionId::new(Provider::Notion, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notion_writes_chunk_appends_and_read_blocks_back_with_paging() {
    let l = lib(100).await;
    l.hub.connect_token(&notion_id(), TOKEN).await.unwrap();
    let n = l.hub.notion(&notion_id()).await.unwrap();
    let sources = n.search("Tasks", Some("data_source")).await.unwrap();
    let ds = sources[0]["id"].as_str().unwrap().to_string();

    // Query with a filter and a sort, the documented JSON forms.
    let done = n
        .query(
            &ds,
            Some(json!({"property": "Done", "checkbox": {"equals": true}})),
            Some(json!([{"property": "Name", "direction": "ascending"}])),
        )
        .await
        .unwrap();
    assert!(!done.is_empty());
    let names: Vec<String> = done
        .iter()
        .map(|p| {
            deskhand_connectors::notion::NotionPage::from_api(&ds, p)
                .unwrap()
                .title
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let err = n
        .query(
            &ds,
            Some(json!({"property": "Nope", "checkbox": {"equals": true}})),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Rejected { status: 400, .. }),
        "{err}"
    );

    // A page with 150 blocks: created with the first 100, the rest appended (Notion's limit).
    let children: Vec<_> = (0..150)
        .map(|i| json!({"object": "block", "type": "paragraph", "paragraph": {"rich_text": [{"type": "text", "text": {"content": format!("line {i}")}}]}}))
        .collect();
    let page = n
        .create_page(
            &ds,
            json!({"Name": {"title": [{"type": "text", "text": {"content": "Weekly report"}}]}}),
            children,
        )
        .await
        .unwrap();
    let id = page["id"].as_str().unwrap();
    assert_eq!(l.fake.handle().blocks_of(id).len(), 150);
    assert_eq!(
        l.fake.handle().request_count("/v1/blocks/"),
        1,
        "one append for the overflow"
    );
    // Reading them back follows cursors (100 + 50).
    let blocks = n.blocks(id).await.unwrap();
    assert_eq!(blocks.len(), 150);
    assert_eq!(
        blocks[149]["paragraph"]["rich_text"][0]["plain_text"],
        "line 149"
    );
    assert!(l.fake.handle().pages_in(&ds).iter().any(|p| p["id"] == id));
    let missing = n
        .blocks("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ConnectorError::NotFound { .. }),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notion_keeps_its_rate_and_honours_retry_after_on_429_and_529() {
    let l = lib(3).await;
    l.hub.connect_token(&notion_id(), TOKEN).await.unwrap();
    let n = l.hub.notion(&notion_id()).await.unwrap();
    let h = l.fake.handle();
    h.reset_requests();
    for _ in 0..7 {
        n.check().await.unwrap();
    }
    // Token bucket: 3 per second on average with a burst of 3, so the 7th request goes out
    // no earlier than ~1.33 s after the first.
    let at: Vec<_> = h.requests().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 7);
    assert!(
        at[6] - at[0] >= Duration::from_millis(1200),
        "{:?}",
        at[6] - at[0]
    );

    h.reset_requests();
    h.inject(
        "/v1/search",
        Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
        1,
    );
    h.inject(
        "/v1/search",
        Fault::NotionOverloaded {
            retry_after_secs: None,
        },
        1,
    );
    let t = std::time::Instant::now();
    n.check().await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    let statuses: Vec<u16> = h.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429 || **s == 529).count(),
        2,
        "{statuses:?}"
    );

    h.inject(
        "/v1/search",
        Fault::TooManyRequests {
            retry_after_secs: None,
        },
        50,
    );
    let err = n.check().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Quota { .. }), "{err}");
    assert!(err.to_string().contains("rate limit"), "{err}");
    h.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_formats_raw_full_and_metadata_parse_alike() {
    let l = lib(100).await;
    let id = ConnectionId::new(Provider::Google, None);
    let creds = ClientCredentials {
        id: "lib-test".into(),
        secret: Some("lib-secret".into()),
    };
    l.hub
        .connect(&id, &creds, &[], |url| {
            let url = url.clone();
            tokio::spawn(async move { reqwest::get(url.as_str()).await.unwrap() });
        })
        .await
        .unwrap();
    let g = l.hub.gmail(&id).await.unwrap();
    let (ids, _) = g.list(None, None, 500).await.unwrap();
    assert!(ids.len() >= 10);
    let mut checked = 0;
    for mid in &ids {
        let raw = MailMessage::from_resource(&g.get(mid, Format::Raw).await.unwrap()).unwrap();
        let full = MailMessage::from_resource(&g.get(mid, Format::Full).await.unwrap()).unwrap();
        let meta =
            MailMessage::from_resource(&g.get(mid, Format::Metadata).await.unwrap()).unwrap();
        assert_eq!(raw.subject, full.subject, "{mid}");
        assert_eq!(raw.subject, meta.subject, "{mid}");
        assert_eq!(raw.attachments, full.attachments, "{mid}");
        assert_eq!(
            raw.body_text.trim().is_empty(),
            full.body_text.trim().is_empty(),
            "{mid}"
        );
        assert!(meta.body_text.is_empty(), "metadata carries no body");
        assert_eq!(raw.labels, full.labels);
        checked += 1;
    }
    assert_eq!(checked, ids.len());
    let err = g.get("does-not-exist", Format::Raw).await.unwrap_err();
    assert!(matches!(err, ConnectorError::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_listener_refuses_a_forged_state_and_waits_for_the_real_one() {
    let l = lib(100).await;
    let id = ConnectionId::new(Provider::Google, None);
    let creds = ClientCredentials {
        id: "lib-test".into(),
        secret: Some("lib-secret".into()),
    };
    let info = l
        .hub
        .connect(&id, &creds, &[], |url| {
            let url = url.clone();
            tokio::spawn(async move {
                let q: std::collections::HashMap<String, String> =
                    url.query_pairs().into_owned().collect();
                let redirect = &q["redirect_uri"];
                // A forged callback (another site's code) is refused ...
                let forged = reqwest::get(format!("{redirect}?code=stolen&state=forged"))
                    .await
                    .unwrap();
                assert_eq!(forged.status().as_u16(), 400);
                // ... and the real consent still completes the flow.
                reqwest::get(url.as_str()).await.unwrap();
            });
        })
        .await
        .unwrap();
    assert_eq!(info.identity.as_deref(), Some("ada@example.com"));
    assert!(info.scopes.iter().all(|s| s.ends_with(".readonly")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_are_refreshed_before_they_expire() {
    let l = lib(100).await;
    let h = l.fake.handle();
    h.set_access_token_lifetime(2);
    let id = ConnectionId::new(Provider::Google, None);
    let creds = ClientCredentials {
        id: "lib-test".into(),
        secret: Some("lib-secret".into()),
    };
    l.hub
        .connect(&id, &creds, &[], |url| {
            let url = url.clone();
            tokio::spawn(async move { reqwest::get(url.as_str()).await.unwrap() });
        })
        .await
        .unwrap();
    let g = l.hub.gmail(&id).await.unwrap();
    h.reset_requests();
    g.profile().await.unwrap();
    g.profile().await.unwrap(); // still fresh: no refresh
    assert_eq!(h.request_count("/token"), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await; // past half the lifetime
    g.profile().await.unwrap();
    assert_eq!(h.request_count("/token"), 2, "refreshed before expiry");
    assert!(
        h.requests().iter().all(|r| r.status < 400),
        "no request met an expired token"
    );
}

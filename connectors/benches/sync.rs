//! Sync benchmark: full sync of 10,000 messages and 5,000 events from the fake providers on
//! loopback, then an incremental sync after 50 changes. Prints seconds, rates, and requests
//! against the minimum the APIs allow. Run: `cargo bench -p deskhand-connectors --bench sync`.
//! Sizes can be changed with BENCH_MESSAGES / BENCH_EVENTS.

use std::sync::Arc;

use deskhand_connectors::calendar::Window;
use deskhand_connectors::{
    Cache, ClientCredentials, ConnectionId, Endpoints, Hub, Provider, Quiet, Resource, Secrets,
    Settings, SyncOutcome,
};
use deskhand_fake_providers::{FakeData, FakeMessage, FakeProviders};
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn line(label: &str, o: &[SyncOutcome], items: usize, minimum: u64) {
    let secs: f64 = o.iter().map(|x| x.report.seconds).sum();
    let requests: u64 = o.iter().map(|x| x.report.requests).sum();
    let fetched: usize = o
        .iter()
        .map(|x| x.report.fetched + x.report.deleted + x.report.updated)
        .sum();
    println!(
        "{label:<28} {secs:>8.3} s  {:>9.0} items/s  items {fetched:>6} (expected {items:>6})  requests {requests:>6}  minimum {minimum:>6}  overhead {:>5.1}%",
        fetched as f64 / secs.max(1e-9),
        (requests as f64 / minimum as f64 - 1.0) * 100.0
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let messages = env_usize("BENCH_MESSAGES", 10_000);
    let events = env_usize("BENCH_EVENTS", 5_000);
    let fake = FakeProviders::start(FakeData::generated(messages, events, 0))
        .await
        .expect("fake");
    let h = fake.handle();
    h.register_client("bench", "bench-secret");
    let dir = tempfile::tempdir().expect("tempdir");
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let secrets = Arc::new(Secrets::encrypted_file(dir.path(), KEY).expect("secrets"));
    let cache = Arc::new(Cache::open(&dir.path().join("cache.db")).expect("cache"));
    let settings = Settings {
        endpoints: Endpoints::under(&url::Url::parse(&fake.base_url()).unwrap()),
        window: Window {
            past_days: 3650,
            future_days: 3650,
        },
        ..Settings::default()
    };
    let concurrency = settings.gmail_concurrency;
    let hub = Hub::new(cache.clone(), secrets, settings);
    let id = ConnectionId::new(Provider::Google, None);
    let creds = ClientCredentials {
        id: "bench".into(),
        secret: Some("bench-secret".into()),
    };
    hub.connect(&id, &creds, &[], |url| {
        let url = url.clone();
        tokio::spawn(async move { reqwest::get(url).await.expect("consent") });
    })
    .await
    .expect("connect");

    println!("Deskhand sync benchmark: {messages} messages, {events} events, Gmail concurrency {concurrency}, fake providers on loopback");
    h.reset_requests();
    let mail = hub
        .sync(&id, Resource::Gmail, &Quiet)
        .await
        .expect("gmail full");
    // The fake keeps ~2% of messages in spam/trash, which the list (like Gmail's) leaves out:
    // the minimum is one profile call, the list pages and one get per visible message.
    let visible = mail[0].report.fetched;
    let list_pages = visible.div_ceil(500).max(1) as u64;
    line(
        "full mail sync",
        &mail,
        visible,
        1 + list_pages + visible as u64,
    );
    let cal = hub
        .sync(&id, Resource::Calendar, &Quiet)
        .await
        .expect("calendar full");
    line(
        "full calendar sync",
        &cal,
        events,
        events.div_ceil(2500).max(1) as u64,
    );

    // 50 changes: 15 new messages, 5 deleted, 5 relabelled; 20 events moved, 5 cancelled.
    let sample = cache
        .search_mail(None, &Default::default(), 10)
        .expect("cached mail");
    for i in 0..15 {
        let raw = format!("From: New Sender <new{i}@example.com>\r\nTo: ada@example.com\r\nSubject: New message {i}\r\nContent-Type: text/plain\r\n\r\nHello {i}\r\n");
        h.add_message(FakeMessage {
            id: format!("bench-new-{i}"),
            thread_id: format!("bench-new-{i}"),
            label_ids: vec!["INBOX".into(), "UNREAD".into()],
            internal_date_ms: chrono::Utc::now().timestamp_millis(),
            raw,
            snippet: format!("Hello {i}"),
        });
    }
    for m in &sample[..5] {
        h.delete_message(&m.id);
    }
    for m in &sample[5..10] {
        h.set_labels(&m.id, &["STARRED"], &[]);
    }
    let cached_events = cache
        .agenda(None, i64::MIN / 2, i64::MAX / 2)
        .expect("events");
    for e in &cached_events[..20] {
        h.upsert_event("primary", json!({"id": e.id, "status": "confirmed", "summary": format!("{} (moved)", e.summary), "start": {"dateTime": "2026-12-24T10:00:00+01:00", "timeZone": "Europe/Berlin"}, "end": {"dateTime": "2026-12-24T11:00:00+01:00", "timeZone": "Europe/Berlin"}}));
    }
    for e in &cached_events[20..25] {
        h.cancel_event("primary", &e.id);
    }
    let mail = hub
        .sync(&id, Resource::Gmail, &Quiet)
        .await
        .expect("gmail incremental");
    line("incremental mail (25 chg)", &mail, 25, 1 + 15);
    let cal = hub
        .sync(&id, Resource::Calendar, &Quiet)
        .await
        .expect("calendar incremental");
    line("incremental calendar (25)", &cal, 25, 1);
    let total: f64 = mail.iter().chain(&cal).map(|x| x.report.seconds).sum();
    println!("incremental sync total       {total:>8.3} s (target < 1 s)");
    println!("token endpoint requests: {}", h.request_count("/token"));
}

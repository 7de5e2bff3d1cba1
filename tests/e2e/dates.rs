//! Dates as people meet them, on both backends: native date, time, datetime-local and month
//! inputs take what a person writes (12/01/2026, 2:30 pm, Jan 2027), and read-only fields owned
//! by a date picker — jQuery UI's, flatpickr's, and a plain calendar of our own — are filled by
//! opening the picker, reading its month, stepping with its own arrows and clicking the day
//! (`fixtures/widgets/dates.html`, the libraries vendored unmodified). And popups as people
//! meet them: a newsletter over a form is declined before filling; a sign-in dialog that is the
//! task is filled.

use std::time::Duration;

use deskhand_browser::{Backend, Browser, FieldStatus, FillRequest, LaunchOptions, Submit};
use serde_json::{json, Value};

use crate::util::{fixture_dir, StaticSite};

async fn open(backend: Backend) -> (StaticSite, Browser, deskhand_browser::Page) {
    open_page(backend, "dates.html").await
}

async fn every_kind_of_date_field(backend: Backend) {
    let (_site, _browser, page) = open(backend).await;
    let fields: Vec<(String, Value)> = [
        ("Arrival", "12/01/2026"),
        ("Check-in time", "2:30 pm"),
        ("Reminder", "1 Dec 2026 09:15"),
        ("Billing month", "Jan 2027"),
        ("Date", "2027-02-14"),
        ("Departure", "03/04/2027"),
        ("Date of birth", "14 July 2025"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), json!(v)))
    .collect();
    let report = page
        .fill(&FillRequest {
            fields,
            submit: Some(Submit::Button("Book".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(report.all_ok(), "{report:#?}");
    let (widget, how) = widget_and_how(&report);
    assert_eq!(widget(0), "date input");
    assert_eq!(how(0), "value 2026-12-01 (from \"12/01/2026\")");
    assert_eq!(widget(1), "time input");
    assert_eq!(widget(3), "month input");
    for i in 4..7 {
        assert_eq!(widget(i), "date picker", "{:?}", report.fields[i]);
    }
    // jQuery UI opens on this month (December 2026): two months on; the plain calendar opens
    // on December 2026 too: seventeen back.
    assert!(how(4).contains("2 months forward"), "{}", how(4));
    assert!(how(6).contains("17 months back"), "{}", how(6));
    let sent: Value = serde_json::from_str(
        page.eval("document.getElementById('result').textContent")
            .await
            .unwrap()
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        sent,
        json!({
            "arrival": "2026-12-01",
            "checkin": "14:30",
            "reminder": "2026-12-01T09:15",
            "billing": "2027-01",
            "date": "02/14/2027",
            "departure": "03/04/2027",
            "bday": "14.07.2025",
        })
    );

    // What is not a date is refused, saying what is.
    let bad = page
        .fill(&FillRequest {
            fields: vec![
                ("Arrival".into(), json!("31/31/2026")),
                ("Date of birth".into(), json!("soon")),
            ],
            ..Default::default()
        })
        .await;
    let bad = match bad {
        Err(deskhand_browser::Error::Fill { report, .. }) => *report,
        other => panic!("the fill should fail: {other:?}"),
    };
    assert_eq!(bad.fields[0].status, FieldStatus::BadValue, "{bad:#?}");
    assert!(bad.fields[0]
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("2026-12-01, 12/01/2026 or 1 Dec 2026"));
    // A read-only field given a non-date stays read-only.
    assert_eq!(bad.fields[1].status, FieldStatus::Readonly, "{bad:#?}");
}

mod date_fields {
    use super::*;

    #[tokio::test]
    async fn cdp() {
        every_kind_of_date_field(Backend::Cdp).await;
    }

    #[tokio::test]
    async fn webdriver() {
        every_kind_of_date_field(Backend::WebDriver).await;
    }
}

/// The page `name` of `fixtures/widgets/`, opened on `backend`.
pub(crate) async fn open_page(
    backend: Backend,
    name: &str,
) -> (StaticSite, Browser, deskhand_browser::Page) {
    let widgets = fixture_dir().parent().unwrap().join("widgets");
    let site = StaticSite::serve(&widgets).await.expect("serve widgets");
    let browser = Browser::launch(LaunchOptions {
        backend,
        action_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await
    .expect("launch chromium");
    let page = browser.new_page().await.unwrap();
    page.goto(&site.url(name)).await.unwrap();
    (site, browser, page)
}

/// Readers of each field's `widget` and `set_by` ("" when absent), by position.
pub(crate) fn widget_and_how(
    report: &deskhand_browser::FillReport,
) -> (impl Fn(usize) -> String + '_, impl Fn(usize) -> String + '_) {
    (
        move |i: usize| report.fields[i].widget.clone().unwrap_or_default(),
        move |i: usize| report.fields[i].set_by.clone().unwrap_or_default(),
    )
}

pub(crate) async fn js(page: &deskhand_browser::Page, expr: &str) -> String {
    let v = page.eval(expr).await.unwrap();
    v.as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}

/// A newsletter popup with its own Email and OK covers the contact form: the fill closes it
/// with "No thanks" (never its OK), says so, and fills and submits the form behind it.
async fn a_popup_over_the_form_is_declined_then_the_form_filled(backend: Backend) {
    let (_site, _browser, page) = open_page(backend, "popup.html").await;
    let shown = crate::util::eventually(Duration::from_secs(5), || async {
        (js(
            &page,
            "String(!!document.querySelector('.newsletter-overlay'))",
        )
        .await
            == "true")
            .then_some(())
    })
    .await;
    assert!(shown.is_some(), "the popup did not show");
    let report = page
        .fill(&FillRequest {
            fields: vec![
                ("Name".into(), json!("Ada Lovelace")),
                ("Email".into(), json!("ada@example.com")),
                ("Message".into(), json!("Two kayaks for Saturday")),
            ],
            submit: Some(Submit::Button("OK".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.dismissed.len(), 1, "{report:#?}");
    assert!(
        report.dismissed[0].contains("closed with \"No thanks\""),
        "{report:#?}"
    );
    assert_eq!(js(&page, "String(window.subscribed)").await, "undefined");
    let sent: Value =
        serde_json::from_str(&js(&page, "document.getElementById('result').textContent").await)
            .unwrap();
    assert_eq!(
        sent,
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "message": "Two kayaks for Saturday"})
    );
}

/// A sign-in dialog that is the task: its fields are filled (not the newsletter's Email behind
/// it), and it is not dismissed.
async fn a_modal_that_is_the_task_is_filled_not_dismissed(backend: Backend) {
    let (_site, _browser, page) = open_page(backend, "modal.html").await;
    let report = page
        .fill(&FillRequest {
            fields: vec![
                ("Email".into(), json!("grace@example.com")),
                ("Password".into(), json!("hunter2!")),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(report.dismissed.is_empty(), "{report:#?}");
    assert!(
        report.fields[0]
            .matched
            .as_ref()
            .unwrap()
            .element
            .contains("[name=email]"),
        "{report:#?}"
    );
    assert_eq!(
        js(&page, "document.querySelector('[name=email]').value").await,
        "grace@example.com"
    );
    assert_eq!(
        js(&page, "document.querySelector('[name=news-email]').value").await,
        ""
    );
}

mod popups {
    use super::*;

    #[tokio::test]
    async fn cdp() {
        a_popup_over_the_form_is_declined_then_the_form_filled(Backend::Cdp).await;
        a_modal_that_is_the_task_is_filled_not_dismissed(Backend::Cdp).await;
    }

    #[tokio::test]
    async fn webdriver() {
        a_popup_over_the_form_is_declined_then_the_form_filled(Backend::WebDriver).await;
        a_modal_that_is_the_task_is_filled_not_dismissed(Backend::WebDriver).await;
    }
}

/// Autocompletes that keep only a value picked from their list (jQuery UI's, an ARIA
/// combobox): typed, the option picked (exact, then prefix, then contains), the field checked;
/// an ambiguous value names the candidates.
async fn autocompletes_take_a_value_from_their_list(backend: Backend) {
    let (_site, _browser, page) = open_page(backend, "places.html").await;
    let report = page
        .fill(&FillRequest {
            fields: vec![
                ("From".into(), json!("Porto São")),
                ("To".into(), json!("faro")),
                ("Via".into(), json!("Coimbra")),
            ],
            submit: Some(Submit::Button("Search".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        report.fields[0].widget.as_deref(),
        Some("autocomplete"),
        "{report:#?}"
    );
    assert!(
        report.fields[0]
            .set_by
            .as_deref()
            .unwrap_or_default()
            .contains("picked \"Porto São Bento\""),
        "{report:#?}"
    );
    let sent: Value =
        serde_json::from_str(&js(&page, "document.getElementById('result').textContent").await)
            .unwrap();
    assert_eq!(
        sent,
        json!({"from": "Porto São Bento", "to": "Faro", "via": "Coimbra-B"})
    );
    let bad = page
        .fill(&FillRequest {
            fields: vec![("To".into(), json!("Lisbon"))],
            ..Default::default()
        })
        .await;
    let Err(deskhand_browser::Error::Fill { report, .. }) = bad else {
        panic!("an ambiguous pick should fail: {bad:?}");
    };
    let msg = report.fields[0].message.clone().unwrap_or_default();
    assert!(
        msg.contains("Lisbon Oriente") && msg.contains("Lisbon Santa Apolónia"),
        "{msg}"
    );
}

mod autocompletes {
    use super::*;

    #[tokio::test]
    async fn cdp() {
        autocompletes_take_a_value_from_their_list(Backend::Cdp).await;
    }

    #[tokio::test]
    async fn webdriver() {
        autocompletes_take_a_value_from_their_list(Backend::WebDriver).await;
    }
}

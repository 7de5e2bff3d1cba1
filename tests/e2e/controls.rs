//! Custom controls as people meet them, on both backends (`fixtures/widgets/controls.html`): a
//! select made of divs, a multi-select listbox in a same-origin frame, a native range input, an
//! ARIA slider in a web component's shadow root (arrow keys only), jQuery UI's spinner, a
//! quantity stepper that answers only its own buttons, a toggle button and a switch. And a React
//! date picker (react-datepicker, `fixtures/widgets/react-dates.html`) that refuses typing.
//! What cannot be set is refused, saying why, and the control is left as it was.

use deskhand_browser::{Backend, FillRequest, Submit};
use serde_json::{json, Value};

use crate::dates::{js, open_page};

fn fields(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn every_custom_control(backend: Backend) {
    let (_site, _browser, page) = open_page(backend, "controls.html").await;
    let report = page
        .fill(&FillRequest {
            fields: fields(&[
                ("Seat class", json!("business")),
                ("Home airport", json!("Bergen")),
                ("Meals", json!(["Vegan", "Halal"])),
                ("Budget", json!("1,250")),
                ("Cabin temperature", json!("23.5")),
                ("Travellers", json!(3)),
                ("Checked bags", json!(2)),
                ("Window seat", json!(true)),
                ("Text me updates", json!("yes")),
            ]),
            submit: Some(Submit::Button("Save extras".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(report.all_ok(), "{report:#?}");
    let (widget, how) = crate::dates::widget_and_how(&report);
    assert_eq!(widget(0), "custom select");
    assert_eq!(how(0), "opened, picked \"Business\" from its list of 3");
    assert_eq!(widget(1), "enhanced select");
    assert_eq!(
        how(1),
        "chosen in the hidden <select> it stands for; it now shows \"Bergen Flesland\""
    );
    assert_eq!(widget(2), "listbox");
    assert_eq!(report.fields[2].value, Some(json!(["Vegan", "Halal"])));
    assert_eq!(widget(3), "slider");
    assert_eq!(how(3), "value 1250 (range 0 to 2000, step 50)");
    assert_eq!(widget(4), "slider");
    assert_eq!(how(4), "5 arrow key presses to 23.5");
    let slider = report.fields[4].matched.as_ref().unwrap();
    assert!(slider.element.contains("shadow root"), "{report:#?}");
    assert_eq!(widget(5), "spinner");
    assert_eq!(how(5), "typed 3");
    assert_eq!(widget(6), "spinner");
    assert_eq!(how(6), "2 presses of its own + and − controls to 2");
    assert_eq!(widget(7), "toggle button");
    assert_eq!(widget(8), "switch");
    // What the page itself holds after the submit (Kosher, selected before, is no longer).
    let sent: Value =
        serde_json::from_str(&js(&page, "document.getElementById('result').textContent").await)
            .unwrap();
    assert_eq!(
        sent,
        json!({
            "class": "Business",
            "airport": "BGO",
            "airport_shown": "Bergen Flesland",
            "meals": ["Vegan", "Halal"],
            "budget": "1250",
            "temperature": "23.5",
            "travellers": 3,
            "bags": "2",
            "window": "true",
            "sms": "true",
        })
    );

    // What a person could not set either: refused with the reason, nothing moved.
    let bad = page
        .fill(&FillRequest {
            fields: fields(&[
                ("Seat class", json!("First")),
                ("Travellers", json!(12)),
                ("Cabin temperature", json!(23.2)),
                ("Budget", json!(1234)),
                ("Checked bags", json!(7)),
                ("Meals", json!("Pizza")),
            ]),
            ..Default::default()
        })
        .await;
    let Err(deskhand_browser::Error::Fill { report, .. }) = bad else {
        panic!("impossible values should fail: {bad:?}");
    };
    let msg = |i: usize| report.fields[i].message.clone().unwrap_or_default();
    assert!(msg(0).contains("\"First\" is disabled"), "{}", msg(0));
    assert!(msg(1).contains("goes from 1 to 9"), "{}", msg(1));
    assert!(
        msg(2).contains("from 23.5 to 23,") && msg(2).contains("left at 23.5"),
        "{}",
        msg(2)
    );
    assert!(
        msg(3).contains("steps of 50") && msg(3).contains("left at 1250"),
        "{}",
        msg(3)
    );
    assert!(msg(4).contains("goes from 0 to 5"), "{}", msg(4));
    assert!(msg(5).contains("\"Vegetarian\""), "{}", msg(5));
    let now = js(
        &page,
        "JSON.stringify([document.getElementById('cls').textContent, \
         document.getElementById('cls-list').hidden, document.getElementById('budget').value, \
         document.querySelector('cabin-slider').shadowRoot.getElementById('t').getAttribute('aria-valuenow'), \
         document.getElementById('travellers').value, document.getElementById('bags').textContent])",
    )
    .await;
    assert_eq!(now, r#"["Business",true,"1250","23.5","3","2"]"#);
}

mod custom_controls {
    use super::*;

    #[tokio::test]
    async fn cdp() {
        every_custom_control(Backend::Cdp).await;
    }

    #[tokio::test]
    async fn webdriver() {
        every_custom_control(Backend::WebDriver).await;
    }
}

/// react-datepicker with typing refused: the typed value does not stay, so the calendar is
/// opened and the day picked; "03/04/2027" is 3 April by the field's `dd/mm/yyyy` placeholder; a
/// drop-off before the pick-up cannot be reached and is refused.
async fn a_react_date_picker(backend: Backend) {
    let (_site, _browser, page) = open_page(backend, "react-dates.html").await;
    let report = page
        .fill(&FillRequest {
            fields: fields(&[
                ("Pick-up date", json!("03/04/2027")),
                ("Drop-off date", json!("April 20, 2027")),
            ]),
            submit: Some(Submit::Button("Reserve".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(report.all_ok(), "{report:#?}");
    let how = report.fields[0].set_by.clone().unwrap_or_default();
    assert_eq!(report.fields[0].widget.as_deref(), Some("date picker"));
    assert!(
        how.starts_with("typing was not kept; opened by focus and click, 4 months forward"),
        "{how}"
    );
    assert_eq!(report.fields[1].value, Some(json!("April 20, 2027")));
    assert_eq!(
        js(&page, "document.getElementById('sent').textContent").await,
        r#"{"pickup":"2027-04-03","dropoff":"2027-04-20"}"#
    );
    let bad = page
        .fill(&FillRequest {
            fields: fields(&[("Drop-off date", json!("March 10, 2027"))]),
            ..Default::default()
        })
        .await;
    let Err(deskhand_browser::Error::Fill { report, .. }) = bad else {
        panic!("a drop-off before the pick-up should fail: {bad:?}");
    };
    let msg = report.fields[0].message.clone().unwrap_or_default();
    assert!(msg.contains("cannot go before April 2027"), "{msg}");
    assert_eq!(
        js(&page, "document.getElementById('dropoff').value").await,
        "April 20, 2027"
    );
}

mod react_date_picker {
    use super::*;

    #[tokio::test]
    async fn cdp() {
        a_react_date_picker(Backend::Cdp).await;
    }

    #[tokio::test]
    async fn webdriver() {
        a_react_date_picker(Backend::WebDriver).await;
    }
}

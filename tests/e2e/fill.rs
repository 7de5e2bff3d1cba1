//! Form filling by human labels, on both backends.

use deskhand_browser::{Error, FieldStatus, FillRequest, Submit};
use serde_json::{json, Value};

fn req(pairs: &[(&str, Value)]) -> FillRequest {
    FillRequest {
        fields: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

fn signup_values() -> FillRequest {
    let text = std::fs::read_to_string(crate::util::fixture("signup.values.json")).unwrap();
    let items: Vec<Value> = serde_json::from_str(&text).unwrap();
    FillRequest {
        fields: items
            .iter()
            .map(|i| (i["label"].as_str().unwrap().to_string(), i["value"].clone()))
            .collect(),
        ..Default::default()
    }
}

both_backends! {
    async fn signup_form_fills_20_fields_in_one_round_trip_and_submits(h) {
        h.open("signup.html").await;
        let mut r = signup_values();
        assert_eq!(r.fields.len(), 20);
        r.submit = Some(Submit::Button("Create account".into()));
        let report = h.page.fill(&r).await.unwrap();
        assert_eq!(report.attempts, 1, "one round trip per form");
        assert!(report.all_ok());
        assert!(report.submit.as_ref().unwrap().navigated);
        assert!(report.url.contains("submitted.html"), "{}", report.url);
        // What the site received, field by field.
        let got: Value = h.page.eval("Object.fromEntries([...document.querySelectorAll('#result dd')].map(d => [d.dataset.name, d.textContent]))").await.unwrap();
        assert_eq!(got["first_name"], "Zoë");
        assert_eq!(got["last_name"], "Ødegård");
        assert_eq!(got["country"], "NO");
        assert_eq!(got["plan"], "pro");
        assert_eq!(got["newsletter"], "yes");
        assert_eq!(got["birth_date"], "1990-05-17");
        assert_eq!(got["start_at"], "2026-12-01T10:15");
        assert_eq!(got.as_object().unwrap().len(), 20, "{got}");
        // Passwords never come back in the report.
        let pw = report.fields.iter().find(|f| f.key == "Password").unwrap();
        assert!(pw.value.as_ref().unwrap().as_str().unwrap().starts_with("(hidden"));
    }

    async fn every_label_style_is_understood(h) {
        h.open("labels.html").await;
        let cases = [
            ("Full name", "l-for", "label[for]"),
            ("Nickname", "l-wrap", "wrapping label"),
            ("Employee number", "l-aria", "aria-label"),
            ("Badge code", "l-labelledby", "aria-labelledby"),
            ("Director", "l-span-before", "text before"),
            ("Department", "l-div-before", "text before"),
            ("Office phone", "l-th", "table row header"),
            ("Cost center", "l-td", "table row cell"),
            ("Project code", "l-caption", "text before"),
            ("Search the archive", "l-placeholder", "placeholder"),
            ("Referral source", "l-name", "name"),
            ("Email address", "l-required", "label[for]"),
            ("zip/postal code", "l-punct", "label[for]"),
        ];
        let mut r = req(&[]);
        for (label, id, _) in &cases {
            r.fields.push((label.to_string(), json!(format!("v-{id}"))));
        }
        r.fields.push(("I agree to the terms".into(), json!(true)));
        let report = h.page.fill(&r).await.unwrap();
        for (i, (label, id, how)) in cases.iter().enumerate() {
            let f = &report.fields[i];
            assert_eq!(f.status, FieldStatus::Ok, "{label}: {}", f.describe());
            let m = f.matched.as_ref().unwrap();
            assert!(m.element.contains(&format!("#{id}")), "{label} matched {}", m.element);
            assert_eq!(&m.how, how, "{label}");
            assert_eq!(h.js(&format!("document.getElementById('{id}').value")).await, format!("v-{id}"));
        }
        assert_eq!(report.fields[0].matched.as_ref().unwrap().score, "exact");
        assert_eq!(report.fields[4].matched.as_ref().unwrap().score, "prefix", "Director for Director Name:");
        assert_eq!(h.js("document.getElementById('l-after').checked").await, "true");
    }

    async fn ambiguous_labels_are_refused_with_candidates(h) {
        h.open("labels.html").await;
        let err = h.page.fill(&req(&[("Phone", json!("1"))])).await.unwrap_err();
        let Error::Fill { report, .. } = &err else { panic!("{err}") };
        assert_eq!(report.fields[0].status, FieldStatus::Ambiguous);
        let msg = err.to_string();
        assert!(msg.contains("Phone (home)") && msg.contains("Phone (work)"), "{msg}");
        // Nothing was typed into either.
        assert_eq!(h.js("document.getElementById('l-phone-home').value + document.getElementById('l-phone-work').value").await, "");
        // The longer label resolves it.
        h.page.fill(&req(&[("Phone (work)", json!("22"))])).await.unwrap();
        assert_eq!(h.js("document.getElementById('l-phone-work').value").await, "22");
    }

    async fn missing_fields_wait_then_name_the_closest_candidates(h) {
        h.open("labels.html").await;
        let started = std::time::Instant::now();
        let err = h.page.fill(&req(&[("Full nam", json!("x")), ("Employe numbr", json!("y"))])).await;
        // "Full nam" is not a whole-word match of "Full name": not found, with the real label offered.
        let err = err.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not found") && msg.contains("\"Full name\""), "{msg}");
        assert!(msg.contains("Employee number"), "{msg}");
        assert!(started.elapsed() >= std::time::Duration::from_secs(4), "it should auto-wait up to the timeout");
    }

    async fn widgets_frames_shadow_roots_and_late_fields(h) {
        h.open("widgets.html").await;
        let r = req(&[
            ("Meeting notes", json!("Agenda: ship it")),
            ("Display name", json!("Zoë")),
            ("Coupon code", json!("SAVE10")),
            ("Reference number", json!("REF-42")),
            ("Late field", json!("arrived")),
            ("Size", json!("M")),
            ("Color", json!("Blue")),
        ]);
        let report = h.page.fill(&r).await.unwrap();
        assert!(report.all_ok());
        assert!(report.attempts > 1, "the late field needed another attempt");
        assert_eq!(h.js("document.getElementById('w-notes').innerText").await, "Agenda: ship it");
        // The React-style tracker saw the change (a plain `el.value = …` would not register).
        assert_eq!(h.js("document.getElementById('w-react-state').textContent").await, "Zoë");
        assert_eq!(h.js("document.getElementById('w-frame').contentDocument.getElementById('f-coupon').value").await, "SAVE10");
        assert_eq!(h.js("document.querySelector('shadow-field').shadowRoot.getElementById('s-ref').value").await, "REF-42");
        assert_eq!(h.js("document.getElementById('w-late').value").await, "arrived");
        assert_eq!(h.js("document.getElementById('w-size').value").await, "m");
        assert_eq!(h.js("document.getElementById('w-blue').checked").await, "true");
        let frame = report.fields.iter().find(|f| f.key == "Coupon code").unwrap();
        assert!(frame.matched.as_ref().unwrap().element.contains("in iframe"));
    }

    async fn bad_values_are_explained_and_partial_fills_report(h) {
        h.open("signup.html").await;
        let err = h.page.fill(&req(&[("Country", json!("Atlantis")), ("Age", json!("abc"))])).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no option \"Atlantis\"") && msg.contains("\"Norway\""), "{msg}");
        assert!(msg.contains("number"), "{msg}");
        let mut r = req(&[("First name", json!("Ada")), ("Shoe size", json!("44"))]);
        r.allow_partial = true;
        let report = h.page.fill(&r).await.unwrap();
        assert_eq!(report.fields[0].status, FieldStatus::Ok);
        assert_eq!(report.fields[1].status, FieldStatus::NotFound);
    }

    async fn html5_validation_blocks_submit_with_a_reason(h) {
        h.open("signup.html").await;
        let mut r = req(&[("First name", json!("Ada")), ("Email", json!("not-an-email"))]);
        r.submit = Some(Submit::Form);
        match h.page.fill(&r).await {
            Err(Error::Invalid(m)) => assert!(m.contains("email"), "{m}"),
            other => panic!("expected a validation refusal, got {other:?}"),
        }
        assert!(h.page.url().await.unwrap().contains("signup.html"), "nothing was submitted");
    }
}

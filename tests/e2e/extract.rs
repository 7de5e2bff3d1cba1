//! Extraction from live pages (both backends) and saved files.

use deskhand_browser::extract::{extract_files, extract_table, Schema};
use serde_json::Value;

fn expected() -> Vec<Value> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::util::fixture("products/expected.json")).unwrap(),
    )
    .unwrap();
    ["page-1.html", "page-2.html", "page-3.html"]
        .iter()
        .flat_map(|p| v[p]["items"].as_array().unwrap().clone())
        .collect()
}

both_backends! {
    async fn live_listing_follows_next_links(h) {
        let schema = Schema::from_file(&crate::util::fixture("products/schema.yaml")).unwrap();
        h.open("products/page-1.html").await;
        let mut all = Vec::new();
        loop {
            // Relative URLs stay as written when no base is given, so they compare with the fixture.
            let page = schema.extract(&h.page.html().await.unwrap(), None).unwrap();
            all.extend(page.records.into_iter().map(|r| serde_json::to_value(r).unwrap()));
            match page.next {
                Some(next) => {
                    let base = url::Url::parse(&h.page.url().await.unwrap()).unwrap();
                    h.page.goto(base.join(&next).unwrap().as_str()).await.unwrap();
                }
                None => break,
            }
        }
        assert_eq!(all, expected());
    }

    async fn live_table_to_records(h) {
        h.open("table.html").await;
        let rows = extract_table(&h.page.html().await.unwrap(), Some("#people")).unwrap();
        assert_eq!(rows.len(), 8);
        assert_eq!(rows[0].keys().cloned().collect::<Vec<_>>(), ["Name", "Email", "Role", "Start date"]);
    }
}

#[test]
fn saved_files_in_parallel_match_the_expected_records() {
    let schema = Schema::from_file(&crate::util::fixture("products/schema.yaml")).unwrap();
    let files: Vec<_> = (1..=3)
        .map(|i| crate::util::fixture(&format!("products/page-{i}.html")))
        .collect();
    let (results, stats) = extract_files(&files, &schema);
    assert_eq!(stats.pages, 3);
    assert_eq!(stats.records, 30);
    let got: Vec<Value> = results
        .into_iter()
        .flat_map(|r| r.unwrap())
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    assert_eq!(got, expected());
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let schema = Schema::parse("items: li\nfields:\n  a: b\n").unwrap();
    let (results, _) = extract_files(&["/nonexistent/page.html".into()], &schema);
    let e = results[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("/nonexistent/page.html"), "{e}");
}

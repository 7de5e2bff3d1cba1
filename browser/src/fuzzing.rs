//! Properties the `extract_schema` fuzz target checks (issue 14), shared with the corpus replay
//! test below so every input the fuzzer kept is re-checked by `cargo test` on stable. See
//! `fuzz/README.md`.

use crate::extract::Schema;

/// A page with a bit of everything a schema may select.
const PAGE: &str = r#"<ul><li class="p" data-id="7"><a class="t" href="/x/1">One</a>
<span class="price">$1</span><i class="tag">a</i><img src="i.png"></li>
<li class="p"><a href="2.html">Two</a></li></ul><a class="next" href="?page=2">Next</a>"#;

/// Is `word` one the schema parser's own messages use (so its presence says nothing about the
/// schema's text)?
fn ours(word: &str) -> bool {
    crate::extract::MESSAGE_WORDS.contains(&word.to_ascii_lowercase().as_str())
}

/// Any text parses to a schema or to an error; an error names only line, column, a field's
/// position and what was expected, never text found in the schema (a schema may be any file a
/// job names: docs/ARCHITECTURE.md, "The guard's read rule"). A schema that parses extracts
/// from a page without panicking and keeps its fields in order.
pub fn extract_schema(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Schema::parse(text) {
        Ok(schema) => {
            let names = schema.field_names();
            assert!(!names.is_empty());
            let base = url::Url::parse("http://h/shop/").expect("a valid URL");
            if let Ok(page) = schema.extract(PAGE, Some(&base)) {
                for r in &page.records {
                    assert_eq!(r.keys().cloned().collect::<Vec<_>>(), names);
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            // Words are runs of letters; digits may only count lines, columns and fields.
            let mut at = 0;
            while let Some(start) = message[at..].find(|c: char| c.is_alphanumeric()) {
                let start = at + start;
                let end = message[start..]
                    .find(|c: char| !c.is_alphanumeric())
                    .map_or(message.len(), |e| start + e);
                let word = &message[start..end];
                let counted = word.bytes().all(|b| b.is_ascii_digit())
                    && ["line ", "column ", "field "]
                        .iter()
                        .any(|w| message[..start].ends_with(w));
                assert!(
                    counted || ours(word),
                    "the error shows {word:?}, which may be the schema's own text: {message:?}"
                );
                at = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_extract_schema_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/extract_schema");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus folder exists") {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| super::extract_schema(&data));
            assert!(r.is_ok(), "corpus file {} fails", path.display());
            n += 1;
        }
        assert!(n > 0, "{} is empty", dir.display());
    }
}

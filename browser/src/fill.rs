//! Form filling: the request (human field names → values) and the report that comes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to do after the fields are filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Submit {
    /// Click the button (or link, or clickable element) with this text, preferring the filled form's own.
    Button(String),
    /// Submit the filled form as Enter would (`requestSubmit`, so validation and handlers run).
    Form,
}

/// A form to fill: ordered keys (labels as a person reads them) and values.
#[derive(Debug, Clone, Default)]
pub struct FillRequest {
    /// `(label, value)` in the order to fill. Values: strings for text, selects (option label or
    /// value) and radio groups; booleans for checkboxes and single radios; arrays for multi-selects.
    pub fields: Vec<(String, Value)>,
    /// Submit afterwards?
    pub submit: Option<Submit>,
    /// Report unmatched keys instead of failing (the form is still submitted if asked).
    pub allow_partial: bool,
}

impl FillRequest {
    /// Build from a JSON object, keeping its key order.
    pub fn from_map(map: &serde_json::Map<String, Value>) -> Self {
        FillRequest {
            fields: map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ..Default::default()
        }
    }

    /// Parse `Label=value` pairs from the command line. `true`/`false` become booleans.
    pub fn from_pairs<S: AsRef<str>>(pairs: &[S]) -> crate::Result<Self> {
        let mut fields = Vec::new();
        for p in pairs {
            let p = p.as_ref();
            let (k, v) = p.split_once('=').ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "--field {p:?} has no '='; write --field 'Label=value'"
                ))
            })?;
            let v = match v {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => Value::String(other.to_string()),
            };
            fields.push((k.trim().to_string(), v));
        }
        Ok(FillRequest {
            fields,
            ..Default::default()
        })
    }
}

/// Outcome of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldStatus {
    /// Filled and read back.
    Ok,
    /// Nothing on the page answers to the label.
    NotFound,
    /// Several fields answer equally well.
    Ambiguous,
    /// Found but not visible.
    Hidden,
    /// Found but disabled.
    Disabled,
    /// Found but read-only.
    Readonly,
    /// Found but removed from the page while we worked.
    Detached,
    /// The field would not take the value (bad option, bad date…).
    BadValue,
    /// Anything else the script reported.
    #[serde(other)]
    Other,
}

impl FieldStatus {
    /// Worth trying again after a short wait (the page may still be rendering).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FieldStatus::NotFound
                | FieldStatus::Hidden
                | FieldStatus::Disabled
                | FieldStatus::Readonly
                | FieldStatus::Detached
        )
    }
}

/// How a key was matched to an element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matched {
    /// The element, e.g. `input#email[type=email][name=email]`.
    pub element: String,
    /// Which source gave the match: `label[for]`, `wrapping label`, `aria-label`, `text before`, …
    pub how: String,
    /// `exact`, `prefix` or `contains`.
    pub score: String,
    /// The page's label text that matched.
    #[serde(default)]
    pub label: Option<String>,
}

/// The result for one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldReport {
    /// The key as given.
    pub key: String,
    /// What happened.
    pub status: FieldStatus,
    /// The element it matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<Matched>,
    /// The value now in the field (read back from the page). Passwords are masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Closest labels on the page, when nothing matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// The widget recognised, when not a plain field: `date input`, `date picker`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget: Option<String>,
    /// How the value was set in that widget (`value 2026-12-01`, `opened by focus and click, 2
    /// months with its arrows, clicked 14`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
}

impl FieldReport {
    /// One line for error messages.
    pub fn describe(&self) -> String {
        let status = serde_json::to_value(&self.status)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default();
        let mut s = format!("{:?}: {status}", self.key);
        if let Some(m) = &self.matched {
            s.push_str(&format!(" ({})", m.element));
        }
        if let Some(msg) = &self.message {
            s.push_str(&format!(" — {msg}"));
        }
        if !self.candidates.is_empty() {
            s.push_str(&format!("; closest: {}", self.candidates.join(", ")));
        }
        s
    }
}

/// The submit step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitReport {
    /// The element clicked or the form submitted.
    pub element: String,
    /// `button` or `form.requestSubmit()`.
    pub how: String,
    /// Did a new page load as a result?
    pub navigated: bool,
}

/// Everything a fill did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillReport {
    /// One entry per key, in request order.
    pub fields: Vec<FieldReport>,
    /// Present when a submit was asked for and done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit: Option<SubmitReport>,
    /// The page URL after the fill (and submit).
    pub url: String,
    /// Popups over the form that were not part of it (a newsletter, a cookie banner), closed
    /// with their own decline or close control before filling: which, and with what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dismissed: Vec<String>,
    /// Round trips to the page (attempts of the retry ladder).
    pub attempts: usize,
    /// Wall time.
    pub elapsed_ms: u64,
}

impl FillReport {
    /// Did every key fill?
    pub fn all_ok(&self) -> bool {
        self.fields.iter().all(|f| f.status == FieldStatus::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_with_booleans_and_keep_order() {
        let r = FillRequest::from_pairs(&["Email=a@b.c", "Subscribe=true", "Note=x=y"]).unwrap();
        assert_eq!(r.fields[0], ("Email".into(), Value::String("a@b.c".into())));
        assert_eq!(r.fields[1].1, Value::Bool(true));
        assert_eq!(r.fields[2].1, Value::String("x=y".into()));
        assert!(FillRequest::from_pairs(&["nothing"]).is_err());
    }

    #[test]
    fn unknown_status_from_script_is_other() {
        let s: FieldStatus = serde_json::from_str("\"covered\"").unwrap();
        assert_eq!(s, FieldStatus::Other);
        assert!(FieldStatus::Hidden.is_transient() && !FieldStatus::Ambiguous.is_transient());
    }
}

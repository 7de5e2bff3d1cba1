//! Locators: how a person (or a skill) names an element. Lazy: resolved again at every action.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A way to find one element. Resolved in the page by the in-page script at every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Locator {
    /// A form field by its label as a person reads it (label, aria, layout, placeholder, name).
    Label {
        /// The label text.
        value: String,
    },
    /// A field by its placeholder.
    Placeholder {
        /// The placeholder text.
        value: String,
    },
    /// A field by its `name` or `id` attribute.
    Name {
        /// The attribute value.
        value: String,
    },
    /// An element by ARIA role (implicit or explicit) and, optionally, accessible name.
    Role {
        /// The role, e.g. `button`, `link`, `checkbox`.
        role: String,
        /// The accessible name to match, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// The smallest visible element whose text matches.
    Text {
        /// The text.
        value: String,
    },
    /// A CSS selector (searched in same-origin iframes and open shadow roots too).
    Css {
        /// The selector.
        value: String,
    },
    /// Something clickable: button, submit input, link, or clickable element — then any text.
    Click {
        /// Its visible text or accessible name.
        value: String,
    },
}

impl Locator {
    /// Parse the string form used on the command line and in skills.
    ///
    /// `css=…`, `label=…`, `placeholder=…`, `name=…`, `text=…`, `role=button[name="Save"]` or
    /// `role=button`. Anything else is `default(s)`: a label for fields, clickable text for clicks.
    pub fn parse_with(s: &str, default: fn(String) -> Locator) -> Result<Locator> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::Invalid(
                "an empty locator matches nothing; give a label, text or css=…".into(),
            ));
        }
        let Some((prefix, rest)) = s.split_once('=') else {
            return Ok(default(s.to_string()));
        };
        let value = rest.trim().to_string();
        Ok(match prefix.trim() {
            "css" => Locator::Css { value },
            "label" => Locator::Label { value },
            "placeholder" => Locator::Placeholder { value },
            "name" | "id" => Locator::Name { value },
            "text" => Locator::Text { value },
            "role" => parse_role(&value)?,
            _ => default(s.to_string()),
        })
    }

    /// Parse a locator for a form field (bare text = label).
    pub fn field(s: &str) -> Result<Locator> {
        Self::parse_with(s, |value| Locator::Label { value })
    }

    /// Parse a locator for a click target (bare text = button/link text).
    pub fn clickable(s: &str) -> Result<Locator> {
        Self::parse_with(s, |value| Locator::Click { value })
    }
}

fn parse_role(v: &str) -> Result<Locator> {
    let (role, rest) = match v.find('[') {
        Some(i) => (&v[..i], Some(&v[i..])),
        None => (v, None),
    };
    let value = match rest {
        None => None,
        Some(r) => {
            let inner = r
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|r| r.trim().strip_prefix("name"))
                .and_then(|r| r.trim().strip_prefix('='))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "bad role locator {v:?}; write role=button[name=\"Save\"]"
                    ))
                })?;
            Some(
                inner
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_string(),
            )
        }
    };
    if role.trim().is_empty() {
        return Err(Error::Invalid(format!("role locator {v:?} names no role")));
    }
    Ok(Locator::Role {
        role: role.trim().to_ascii_lowercase(),
        value,
    })
}

impl std::fmt::Display for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Locator::Label { value } => write!(f, "field labelled {value:?}"),
            Locator::Placeholder { value } => write!(f, "field with placeholder {value:?}"),
            Locator::Name { value } => write!(f, "field named {value:?}"),
            Locator::Role {
                role,
                value: Some(v),
            } => write!(f, "{role} named {v:?}"),
            Locator::Role { role, value: None } => write!(f, "the {role}"),
            Locator::Text { value } => write!(f, "text {value:?}"),
            Locator::Css { value } => write!(f, "CSS {value:?}"),
            Locator::Click { value } => write!(f, "button or link {value:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_and_defaults() {
        assert_eq!(
            Locator::field("Email").unwrap(),
            Locator::Label {
                value: "Email".into()
            }
        );
        assert_eq!(
            Locator::clickable("Save").unwrap(),
            Locator::Click {
                value: "Save".into()
            }
        );
        assert_eq!(
            Locator::field("css=#a > b").unwrap(),
            Locator::Css {
                value: "#a > b".into()
            }
        );
        assert_eq!(
            Locator::clickable("role=button[name=\"Create account\"]").unwrap(),
            Locator::Role {
                role: "button".into(),
                value: Some("Create account".into())
            }
        );
        assert_eq!(
            Locator::clickable("role=Link").unwrap(),
            Locator::Role {
                role: "link".into(),
                value: None
            }
        );
        // An '=' inside an ordinary label is not a prefix.
        assert_eq!(
            Locator::field("a=b").unwrap(),
            Locator::Label {
                value: "a=b".into()
            }
        );
        assert!(Locator::field("  ").is_err());
        assert!(Locator::clickable("role=button[nam=x]").is_err());
    }

    #[test]
    fn serializes_as_tagged_json_for_the_script() {
        let j = serde_json::to_string(&Locator::Css { value: "a".into() }).unwrap();
        assert_eq!(j, r#"{"kind":"css","value":"a"}"#);
    }
}

//! The value types action arguments are made of. Each checks itself when it is deserialized
//! (a one-line string refuses a newline, a URL must be http(s)), and each describes itself in the
//! argument's JSON Schema with an `x-param` kind, from which a directly runnable action's
//! parameters ([`ParamDef`]) are derived: the schema is the single description of an action's
//! arguments, for the job checker, the planner and the MCP server alike.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{ParamDef, ParamType};

/// One line of text: no control characters, not even tab or newline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Line(pub String);

/// Text of several lines (a mail's body): tab, newline and CR allowed, other controls refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

/// An http(s) (or file) URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WebUrl(pub String);

/// A calendar day, `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Day(pub String);

impl Line {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Line {
    fn from(s: &str) -> Line {
        Line(s.to_string())
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string, or a number written where a string was meant (`zip: 10115`).
fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        S(String),
        N(serde_json::Number),
    }
    Ok(match S::deserialize(d)? {
        S::S(s) => s,
        S::N(n) => n.to_string(),
    })
}

/// Deserialize through the parameter type's own check ([`super::coerce`]), so a typed argument
/// and a job's parameter of the same kind accept exactly the same values.
fn checked<'de, D: Deserializer<'de>>(d: D, kind: ParamType) -> Result<String, D::Error> {
    let s = string_like(d)?;
    let def = ParamDef {
        name: String::new(),
        kind,
        required: true,
        default: None,
        description: String::new(),
    };
    match super::coerce(&def, Value::String(s)).map_err(serde::de::Error::custom)? {
        Value::String(s) => Ok(s),
        other => Ok(other.to_string()),
    }
}

macro_rules! checked_string {
    ($t:ident, $kind:expr, $schema:tt) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                checked(d, $kind).map($t)
            }
        }
        impl JsonSchema for $t {
            fn schema_name() -> Cow<'static, str> {
                stringify!($t).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

checked_string!(Line, ParamType::String, {"type": "string", "x-param": "string"});
checked_string!(Text, ParamType::Text, {"type": "string", "x-param": "text"});
checked_string!(WebUrl, ParamType::Url, {"type": "string", "format": "uri", "x-param": "url"});
checked_string!(Day, ParamType::Date, {"type": "string", "format": "date", "x-param": "date"});

/// The JSON Schema of an argument struct, as a value.
pub fn schema_of<T: JsonSchema>() -> Value {
    schemars::schema_for!(T).to_value()
}

/// The parameters a schema describes (a directly runnable action's own parameters).
pub fn params_of(schema: &Value) -> Vec<ParamDef> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return vec![];
    };
    props
        .iter()
        .map(|(name, p)| {
            let p = resolve(schema, p);
            ParamDef {
                name: name.clone(),
                kind: kind_of(schema, p),
                required: required.contains(&name.as_str()),
                default: p.get("default").cloned().filter(|d| !d.is_null()),
                description: p["description"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// The names of the fields a result schema describes (empty: any value).
pub fn fields_of(schema: &Value) -> Vec<String> {
    schema["properties"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follow a `$ref` into the schema's `$defs`.
fn resolve<'a>(root: &'a Value, p: &'a Value) -> &'a Value {
    match p["$ref"].as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => &root["$defs"][name],
        None => p,
    }
}

fn kind_of(root: &Value, p: &Value) -> ParamType {
    match p["x-param"].as_str() {
        Some("url") => return ParamType::Url,
        Some("text") => return ParamType::Text,
        Some("date") => return ParamType::Date,
        Some("string") => return ParamType::String,
        _ => {}
    }
    // Option<T>: `anyOf: [T, null]` (or a type list with "null").
    if let Some(any) = p["anyOf"].as_array() {
        if let Some(inner) = any.iter().find(|x| x["type"] != "null") {
            return kind_of(root, resolve(root, inner));
        }
    }
    let types: Vec<&str> = match &p["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match types.iter().find(|t| **t != "null").copied() {
        Some("integer") => ParamType::Int,
        Some("boolean") => ParamType::Bool,
        Some("string") => ParamType::String,
        _ => ParamType::Json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Some arguments.
    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Example {
        /// The page.
        url: WebUrl,
        /// A line.
        title: Option<Line>,
        /// Lines.
        body: Text,
        /// How many.
        #[serde(default = "ten")]
        count: u32,
        /// Anything.
        extra: Option<Value>,
        /// When.
        day: Option<Day>,
    }

    fn ten() -> u32 {
        10
    }

    #[test]
    fn parameters_come_from_the_type() {
        let s = schema_of::<Example>();
        let p = params_of(&s);
        let get = |n: &str| p.iter().find(|d| d.name == n).unwrap();
        assert_eq!(get("url").kind, ParamType::Url);
        assert!(get("url").required);
        assert_eq!(get("url").description, "The page.");
        assert_eq!(get("title").kind, ParamType::String);
        assert!(!get("title").required);
        assert_eq!(get("body").kind, ParamType::Text);
        assert_eq!(get("count").kind, ParamType::Int);
        assert_eq!(get("count").default, Some(Value::from(10)));
        assert_eq!(get("extra").kind, ParamType::Json);
        assert_eq!(get("day").kind, ParamType::Date);
    }

    #[test]
    fn values_check_themselves() {
        let ok: Example = serde_json::from_value(serde_json::json!({
            "url": "https://example.com/", "title": 42, "body": "a\nb"
        }))
        .unwrap();
        assert_eq!(ok.title.unwrap().0, "42");
        assert_eq!(ok.count, 10);
        for bad in [
            serde_json::json!({"url": "javascript:x", "body": ""}),
            serde_json::json!({"url": "https://e.com", "title": "a\nBcc: x", "body": ""}),
            serde_json::json!({"url": "https://e.com", "body": "\u{1b}[2J"}),
            serde_json::json!({"url": "https://e.com", "body": "", "day": "tomorrow"}),
        ] {
            assert!(serde_json::from_value::<Example>(bad).is_err());
        }
    }
}

//! Step templates: a step's `with:` values may refer to the job's parameters and to the results
//! of the steps it `needs` (`{{ params.url }}`, `{{ steps.extract.path }}`,
//! `{{ steps.search.messages | length }}`). MiniJinja renders them in a sandbox: no loader (no
//! file access, no include/import), a fuel limit on every evaluation (no unbounded loops), and
//! strict undefined values (a misspelt field is an error, not an empty string). A value that is a
//! single `{{ expression }}` keeps its type (a number stays a number, a list a list).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// Instructions one evaluation may spend; enough for any sensible argument, a bound on a loop.
const FUEL: u64 = 50_000;

/// Names a template may start from.
pub const ROOTS: &[&str] = &["params", "steps", "job"];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // An absent optional parameter renders as nothing inside text, not as "none".
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
});

/// A name a template reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ref {
    /// `params.NAME`.
    Param(String),
    /// `steps.ID` or `steps.ID.FIELD`.
    Step {
        /// The step's id.
        id: String,
        /// The field of its result, when one is named.
        field: Option<String>,
    },
    /// `job.…`.
    Job,
    /// Something templates do not know (`secrets`, `env`, a bare `steps`).
    Unknown(String),
}

/// Does this string hold template syntax at all?
fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression of a string that is exactly one `{{ … }}`, else None.
fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!is_template(inner) && !inner.contains("}}")).then_some(inner.trim())
}

/// Every reference in the strings of `v` (keys and values), or the first syntax error.
pub fn refs(v: &Value) -> Result<BTreeSet<Ref>, String> {
    let mut out = BTreeSet::new();
    collect(v, &mut out)?;
    Ok(out)
}

fn collect(v: &Value, out: &mut BTreeSet<Ref>) -> Result<(), String> {
    match v {
        Value::String(s) if is_template(s) => {
            let names = match single_expression(s) {
                Some(e) => ENV
                    .compile_expression(e)
                    .map_err(|e| syntax(&e))?
                    .undeclared_variables(true),
                None => ENV
                    .template_from_str(s)
                    .map_err(|e| syntax(&e))?
                    .undeclared_variables(true),
            };
            for n in names {
                out.insert(classify(&n));
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(|x| collect(x, out)),
        Value::Object(o) => o.values().try_for_each(|x| collect(x, out)),
        _ => Ok(()),
    }
}

fn classify(name: &str) -> Ref {
    let mut parts = name.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("params"), Some(p), _) => Ref::Param(p.to_string()),
        (Some("steps"), Some(id), field) => Ref::Step {
            id: id.to_string(),
            field: field.map(String::from),
        },
        (Some("job"), _, _) => Ref::Job,
        _ => Ref::Unknown(name.to_string()),
    }
}

fn syntax(e: &minijinja::Error) -> String {
    let mut msg = format!("template syntax: {}", e.kind());
    if let Some(d) = e.detail() {
        msg.push_str(": ");
        msg.push_str(d);
    }
    msg
}

/// What a step's templates see: the job's parameters (every declared one, absent ones as
/// null), the results of the steps it needs, and the job's id.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Scope {
    /// `params.*`.
    pub params: Map<String, Value>,
    /// `steps.*`.
    pub steps: Map<String, Value>,
    /// `job.id`.
    pub job: Map<String, Value>,
}

impl Scope {
    /// A scope with parameters only (load and admission time: no step has run).
    pub fn params(params: &Map<String, Value>) -> Scope {
        Scope {
            params: params.clone(),
            ..Scope::default()
        }
    }
}

/// Render every string of `v` in `scope`. A string that is one expression takes the
/// expression's value and type; other strings are rendered as text.
pub fn render(v: &Value, scope: &Scope) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if is_template(s) => match single_expression(s) {
            Some(e) => {
                let expr = ENV.compile_expression(e).map_err(|e| failure(s, &e))?;
                let got = expr.eval(scope).map_err(|e| failure(s, &e))?;
                if got.is_undefined() {
                    return Err(failure(
                        s,
                        &minijinja::Error::from(minijinja::ErrorKind::UndefinedError),
                    ));
                }
                serde_json::to_value(&got).map_err(|e| format!("{s}: {e}"))?
            }
            None => Value::String(ENV.render_str(s, scope).map_err(|e| failure(s, &e))?),
        },
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render(x, scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render(x, scope)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn failure(template: &str, e: &minijinja::Error) -> String {
    let what = match e.kind() {
        minijinja::ErrorKind::UndefinedError => {
            "it names something the step does not have (a field its earlier step did not return?)"
                .to_string()
        }
        minijinja::ErrorKind::OutOfFuel => {
            "it ran too long (a loop over too much); keep templates to simple look-ups".to_string()
        }
        _ => e.detail().unwrap_or("cannot be evaluated").to_string(),
    };
    format!("template {template:?}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_and_classified() {
        let v = json!({
            "a": "{{ params.url }}",
            "b": "page {{ steps.extract.path }} and {{ steps.search.messages | length }}",
            "c": ["{{ job.id }}", "{{ secrets.token }}", 3],
        });
        let r = refs(&v).unwrap();
        assert!(r.contains(&Ref::Param("url".into())));
        assert!(r.contains(&Ref::Step {
            id: "extract".into(),
            field: Some("path".into())
        }));
        assert!(r.contains(&Ref::Step {
            id: "search".into(),
            field: Some("messages".into())
        }));
        assert!(r.contains(&Ref::Job));
        assert!(r.contains(&Ref::Unknown("secrets.token".into())));
        assert!(refs(&json!("{{ params.x ")).unwrap_err().contains("syntax"));
    }

    #[test]
    fn one_expression_keeps_its_type_and_filters_work() {
        let scope = Scope {
            params: json!({"n": 3, "none": null}).as_object().unwrap().clone(),
            steps: json!({"s": {"path": "reports/a.csv", "messages": [{"from": "a"}, {"from": "b"}]}})
                .as_object()
                .unwrap()
                .clone(),
            job: Map::new(),
        };
        let r = |t: Value| render(&t, &scope);
        assert_eq!(r(json!("{{ params.n }}")).unwrap(), json!(3));
        assert_eq!(r(json!("{{ params.none }}")).unwrap(), Value::Null);
        assert_eq!(
            r(json!("{{ steps.s.messages | length }}")).unwrap(),
            json!(2)
        );
        assert_eq!(
            r(json!("see {{ steps.s.path }}")).unwrap(),
            json!("see reports/a.csv")
        );
        assert_eq!(
            r(json!("{{ steps.s.messages | map(attribute='from') | join(', ') }}")).unwrap(),
            json!("a, b")
        );
        assert_eq!(
            r(json!("{{ steps.s.nope | default('none') }}")).unwrap(),
            json!("none")
        );
        assert!(r(json!("{{ steps.s.nope }}"))
            .unwrap_err()
            .contains("does not have"));
    }

    #[test]
    fn the_sandbox_has_no_files_and_bounded_loops() {
        let scope = Scope::default();
        let e = render(&json!("{% include 'x' %}"), &scope).unwrap_err();
        assert!(!e.is_empty());
        let e = render(
            &json!("{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"),
            &scope,
        )
        .unwrap_err();
        assert!(e.contains("too long"), "{e}");
    }
}

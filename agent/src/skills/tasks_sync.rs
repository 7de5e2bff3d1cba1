//! `tasks.notion-sync`: two-way sync of `TASKS.md` with a Notion data source (title, done, due).
//!
//! A synced task carries its page id in an HTML comment at the end of its line
//! (`- [ ] Write report due:2026-12-01 <!-- notion:… -->`), invisible when the Markdown is
//! rendered and kept when the person edits the text. The values both sides had after the last
//! sync are remembered, so each side's changes since then can be told apart (three-way merge):
//! a field changed on one side is copied to the other; changed on both, the person's file wins and
//! the report says so. Unlinked tasks with the same title as an unlinked page are linked instead
//! of duplicated. Nothing is ever deleted on either side: a task removed from the file or a page
//! archived in Notion is reported, not mirrored.

use std::collections::{BTreeMap, HashMap};

use deskhand_connectors::notion::NotionPage;
use deskhand_connectors::Provider;
use deskhand_workspace::tasks::{Task, TaskList};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::args::Line;
use super::Account;
use crate::guard::{Access, Guard};
use crate::runner::{StepCtx, StepError};

/// One task's synced fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fields {
    /// Title without tokens.
    pub title: String,
    /// Done.
    pub done: bool,
    /// `YYYY-MM-DD`.
    pub due: Option<String>,
}

const LINK: &str = "<!-- notion:";

/// The page id a task line links to.
pub fn link_of(text: &str) -> Option<&str> {
    let start = text.find(LINK)? + LINK.len();
    let end = text[start..].find("-->")? + start;
    Some(text[start..end].trim())
}

fn local_fields(t: &Task) -> Fields {
    let title = match t.title.find(LINK) {
        Some(i) => t.title[..i].trim().to_string(),
        None => t.title.trim().to_string(),
    };
    Fields {
        title,
        done: t.done,
        due: t.due.map(|d| d.format("%Y-%m-%d").to_string()),
    }
}

/// How the data source's properties map to our fields.
#[derive(Debug, Default)]
struct Schema {
    title: String,
    status: Option<(String, String, String)>,
    checkbox: Option<String>,
    due: Option<String>,
}

impl Schema {
    fn from_source(ds: &Value) -> Result<Schema, StepError> {
        let props = ds["properties"].as_object().cloned().unwrap_or_default();
        let mut s = Schema::default();
        for (name, p) in &props {
            match p["type"].as_str().unwrap_or_default() {
                "title" => s.title = name.clone(),
                "status" => {
                    let opts: Vec<String> = p["status"]["options"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o["name"].as_str().map(String::from))
                        .collect();
                    let done = opts
                        .iter()
                        .find(|o| {
                            matches!(o.to_lowercase().as_str(), "done" | "complete" | "completed")
                        })
                        .cloned();
                    let todo = opts
                        .iter()
                        .find(|o| {
                            matches!(
                                o.to_lowercase().as_str(),
                                "not started" | "to do" | "to-do" | "todo"
                            )
                        })
                        .or(opts.first())
                        .cloned();
                    if let (Some(d), Some(t)) = (done, todo) {
                        s.status = Some((name.clone(), d, t));
                    }
                }
                "checkbox" if s.checkbox.is_none() || name.eq_ignore_ascii_case("done") => {
                    s.checkbox = Some(name.clone())
                }
                "date" if s.due.is_none() || name.eq_ignore_ascii_case("due") => {
                    s.due = Some(name.clone())
                }
                _ => {}
            }
        }
        if s.title.is_empty() {
            return Err(StepError::Fatal(
                "the data source has no title property".into(),
            ));
        }
        if s.status.is_none() && s.checkbox.is_none() {
            return Err(StepError::Fatal(
                "the data source has neither a status property with a Done option nor a checkbox; add one in Notion".into(),
            ));
        }
        Ok(s)
    }

    fn remote(&self, p: &NotionPage) -> Fields {
        let done = match (&self.status, &self.checkbox) {
            (Some((name, done, _)), _) if p.properties.contains_key(name) => {
                p.properties[name].as_str() == Some(done.as_str())
            }
            (_, Some(cb)) => p
                .properties
                .get(cb)
                .and_then(Value::as_bool)
                .unwrap_or(false),
            _ => false,
        };
        let due = self
            .due
            .as_ref()
            .and_then(|d| p.properties.get(d))
            .and_then(|v| v.as_str().or_else(|| v["start"].as_str()))
            .map(|s| s.chars().take(10).collect());
        Fields {
            title: p.title.trim().to_string(),
            done,
            due,
        }
    }

    /// Notion properties for `f`.
    fn properties(&self, f: &Fields) -> Value {
        let mut props = Map::new();
        props.insert(
            self.title.clone(),
            json!({"title": [{"type": "text", "text": {"content": f.title}}]}),
        );
        if let Some((name, done, todo)) = &self.status {
            props.insert(
                name.clone(),
                json!({"status": {"name": if f.done { done } else { todo }}}),
            );
        }
        if let Some(cb) = &self.checkbox {
            props.insert(cb.clone(), json!({"checkbox": f.done}));
        }
        if let Some(d) = &self.due {
            props.insert(
                d.clone(),
                match &f.due {
                    Some(due) => json!({"date": {"start": due}}),
                    None => json!({"date": null}),
                },
            );
        }
        Value::Object(props)
    }
}

/// What one sync decided, before any write.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Pages to update in Notion: id → fields.
    pub push: BTreeMap<String, Fields>,
    /// Local tasks to change: page id → fields.
    pub pull: BTreeMap<String, Fields>,
    /// Local lines (exact text) to create pages for.
    pub create: Vec<(String, Fields)>,
    /// Unlinked local line (exact text) → page id to link it to.
    pub link: Vec<(String, String)>,
    /// Pages new in Notion to add locally.
    pub add: Vec<(String, Fields)>,
    /// Conflicts, as sentences.
    pub conflicts: Vec<String>,
    /// Things reported, not mirrored.
    pub notes: Vec<String>,
}

/// Decide the sync (pure: no I/O), from the local tasks, the remote pages and the last base.
pub fn plan(
    local: &[(String, Option<String>, Fields)],
    remote: &BTreeMap<String, Fields>,
    base: &BTreeMap<String, Fields>,
) -> Plan {
    let mut plan = Plan::default();
    let linked: HashMap<&str, &Fields> = local
        .iter()
        .filter_map(|(_, id, f)| id.as_deref().map(|i| (i, f)))
        .collect();
    for (id, l) in &linked {
        let Some(r) = remote.get(*id) else {
            plan.notes.push(format!(
                "{:?} is no longer in Notion (archived or unshared); left as is",
                l.title
            ));
            continue;
        };
        let b = base.get(*id).cloned().unwrap_or_else(|| r.clone());
        let mut to_push = r.clone();
        let mut to_pull = (*l).clone();
        let (mut push, mut pull) = (false, false);
        macro_rules! merge {
            ($f:ident, $label:expr) => {
                let (lc, rc) = (l.$f != b.$f, r.$f != b.$f);
                if lc && l.$f != r.$f {
                    if rc {
                        plan.conflicts.push(format!(
                            "{:?}: {} changed on both sides; kept the file's",
                            l.title, $label
                        ));
                    }
                    to_push.$f = l.$f.clone();
                    push = true;
                } else if rc && !lc {
                    to_pull.$f = r.$f.clone();
                    pull = true;
                }
            };
        }
        merge!(title, "title");
        merge!(done, "done");
        merge!(due, "due date");
        if push {
            plan.push.insert(id.to_string(), to_push);
        }
        if pull {
            plan.pull.insert(id.to_string(), to_pull);
        }
    }
    for id in base.keys() {
        if !linked.contains_key(id.as_str()) && remote.contains_key(id) {
            plan.notes.push(format!(
                "{:?} was removed from TASKS.md; kept in Notion",
                remote[id].title
            ));
        }
    }
    // Pages nobody links to: link by equal title, else add locally (unless removed locally).
    let mut unlinked_local: Vec<&(String, Option<String>, Fields)> =
        local.iter().filter(|(_, id, _)| id.is_none()).collect();
    for (id, r) in remote {
        if linked.contains_key(id.as_str()) || base.contains_key(id) {
            continue;
        }
        if let Some(pos) = unlinked_local
            .iter()
            .position(|(_, _, f)| f.title.eq_ignore_ascii_case(&r.title))
        {
            let (line, _, _) = unlinked_local.remove(pos);
            plan.link.push((line.clone(), id.clone()));
        } else {
            plan.add.push((id.clone(), r.clone()));
        }
    }
    for (line, _, f) in unlinked_local {
        if !f.done {
            plan.create.push((line.clone(), f.clone()));
        }
    }
    plan
}

fn with_fields(text: &str, t: &Task, f: &Fields, id: &str) -> String {
    let _ = text;
    let mut s = f.title.clone();
    for tag in &t.tags {
        s.push_str(&format!(" #{tag}"));
    }
    if let Some(o) = &t.owner {
        s.push_str(&format!(" @{o}"));
    }
    if let Some(d) = &f.due {
        s.push_str(&format!(" due:{d}"));
    }
    s.push_str(&format!(" {LINK}{id} -->"));
    s
}

/// A task's identity within one sync: its text after the checkbox.
fn line_text(_list: &TaskList, t: &Task) -> String {
    t.text.clone()
}

/// `tasks.notion-sync`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SyncArgs {
    /// Data source id or title.
    data_source: Line,
    /// TASKS.md section for tasks new from Notion.
    #[serde(default = "notion_section")]
    section: Line,
    #[serde(flatten)]
    account: Account,
}

fn notion_section() -> Line {
    Line::from("Notion")
}

/// Run the sync.
pub(super) async fn run(g: Guard, a: SyncArgs, _: StepCtx) -> Result<Value, StepError> {
    let hub = g.connector("notion", Access::Read).await?;
    let id = a.account.of(Provider::Notion);
    let conn = id.to_string();
    let wanted = a.data_source.0;
    let section = a.section.0;
    let ds = hub
        .cache()
        .data_sources(Some(&conn))
        .map_err(|e| StepError::Fatal(e.to_string()))?
        .into_iter()
        .find(|d| d.id == wanted || d.title.eq_ignore_ascii_case(&wanted))
        .ok_or_else(|| {
            StepError::Fatal(format!(
                "no data source {wanted:?} is shared with {conn}; share it with the integration in Notion"
            ))
        })?;
    let notion = hub
        .notion(&id)
        .await
        .map_err(super::super::connector_skills::step_error)?;
    let schema = Schema::from_source(
        &notion
            .data_source(&ds.id)
            .await
            .map_err(super::super::connector_skills::step_error)?,
    )?;
    let pages = hub
        .cache()
        .pages(Some(&conn), &ds.id)
        .map_err(|e| StepError::Fatal(e.to_string()))?;
    let remote: BTreeMap<String, Fields> = pages
        .iter()
        .map(|p| (p.id.clone(), schema.remote(p)))
        .collect();
    let key = format!("notion-tasks:{conn}:{}", ds.id);
    let base: BTreeMap<String, Fields> = g
        .state(&key)
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();

    let text = {
        let files = g.reader();
        tokio::task::spawn_blocking(move || files.read("TASKS.md"))
            .await
            .map_err(|e| StepError::Fatal(e.to_string()))?
            .map_err(|e| StepError::Fatal(e.to_string()))?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let list = TaskList::parse(&text);
    let local: Vec<(String, Option<String>, Fields)> = list
        .tasks()
        .iter()
        .map(|t| {
            (
                line_text(&list, t),
                link_of(&t.text).map(String::from),
                local_fields(t),
            )
        })
        .collect();
    let plan = plan(&local, &remote, &base);

    // Notion first: a failure here leaves the file untouched, and the next run redoes it.
    let notion_err = super::super::connector_skills::step_error;
    let mut created = Vec::new();
    if !plan.push.is_empty() || !plan.create.is_empty() {
        g.connector("notion", Access::Write).await?;
        let preview = json!({"update": plan.push.values().map(|f| f.title.clone()).collect::<Vec<_>>(),
               "create": plan.create.iter().map(|(_, f)| f.title.clone()).collect::<Vec<_>>()});
        let (plan, notion, conn, ds_id, created, schema) =
            (&plan, &notion, &conn, &ds.id, &mut created, &schema);
        g.external(
            "external-write",
            &format!("Notion data source {}", ds.id),
            preview,
            None,
            |fx| async move {
                for (page, f) in &plan.push {
                    notion
                        .update_page(page, json!({"properties": schema.properties(f)}))
                        .await
                        .map_err(notion_err)?;
                    fx.done(
                        "notion.updated",
                        json!({"page": page, "title": f.title, "done": f.done, "due": f.due}),
                    );
                }
                for (line, f) in &plan.create {
                    let page = notion
                        .create_page(ds_id, schema.properties(f), vec![])
                        .await
                        .map_err(notion_err)?;
                    if let Some(pid) = page["id"].as_str() {
                        fx.done(
                            "notion.created",
                            json!({"page": pid, "data_source": ds_id, "title": f.title}),
                        );
                        // So `deskhand undo` can archive it.
                        fx.created("notion.page", conn, pid)?;
                        created.push((line.clone(), pid.to_string(), f.clone()));
                    }
                }
                Ok(Value::Null)
            },
        )
        .await?;
    }

    // Then the file, re-applied on the person's latest version if they edited it meanwhile.
    let pull = plan.pull.clone();
    let links: Vec<(String, String)> = plan
        .link
        .iter()
        .cloned()
        .chain(created.iter().map(|(l, p, _)| (l.clone(), p.clone())))
        .collect();
    let add = plan.add.clone();
    let sec = section.clone();
    g.edit_file("TASKS.md", move |files| {
        deskhand_workspace::tasks::edit_tasks(files, |list: &mut TaskList| {
            for t in list.tasks().to_vec() {
                if let Some(pid) = link_of(&t.text) {
                    if let Some(f) = pull.get(pid) {
                        if f.done != t.done {
                            list.set_done(t.line, f.done)?;
                        }
                        let text = with_fields(&t.text, &t, f, pid);
                        if local_fields(&t).title != f.title || local_fields(&t).due != f.due {
                            list.set_text(t.line, &text)?;
                        }
                    }
                } else {
                    let line = line_text(list, &t);
                    if let Some((_, pid)) = links.iter().find(|(l, _)| *l == line) {
                        list.set_text(t.line, &format!("{} {LINK}{pid} -->", t.text.trim_end()))?;
                    }
                }
            }
            for (pid, f) in &add {
                let already = list
                    .tasks()
                    .iter()
                    .any(|t| link_of(&t.text) == Some(pid.as_str()));
                if !already {
                    let mut text = f.title.clone();
                    if let Some(d) = &f.due {
                        text.push_str(&format!(" due:{d}"));
                    }
                    text.push_str(&format!(" {LINK}{pid} -->"));
                    let line = list.add(&sec, &text)?;
                    if f.done {
                        list.set_done(line, true)?;
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
    })
    .await?;

    // The new base: what both sides hold now.
    let mut new_base = remote.clone();
    for (id, f) in plan.push.iter().chain(plan.pull.iter()) {
        new_base.insert(id.clone(), f.clone());
    }
    for (_, pid, f) in &created {
        new_base.insert(pid.clone(), f.clone());
    }
    g.set_state(&key, &serde_json::to_value(&new_base).unwrap_or_default())
        .await?;
    Ok(json!({
        "data_source": ds.title,
        "pushed": plan.push.len(),
        "pulled": plan.pull.len(),
        "created_in_notion": created.len(),
        "added_to_file": plan.add.len(),
        "linked": plan.link.len(),
        "conflicts": plan.conflicts,
        "notes": plan.notes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(title: &str, done: bool, due: Option<&str>) -> Fields {
        Fields {
            title: title.into(),
            done,
            due: due.map(String::from),
        }
    }

    #[test]
    fn three_way_merge_moves_each_sides_changes_and_keeps_the_file_on_conflict() {
        let base: BTreeMap<_, _> = [
            ("p1".to_string(), f("Report", false, None)),
            ("p2".to_string(), f("Call", false, Some("2026-12-01"))),
            ("p3".to_string(), f("Gone", false, None)),
        ]
        .into();
        let remote: BTreeMap<_, _> = [
            ("p1".to_string(), f("Report", true, None)),
            ("p2".to_string(), f("Call", false, Some("2026-12-03"))),
            ("p3".to_string(), f("Gone", false, None)),
            ("p4".to_string(), f("New in Notion", false, None)),
            ("p5".to_string(), f("Same title", false, None)),
        ]
        .into();
        let local = vec![
            (
                "- [ ] Report".to_string(),
                Some("p1".to_string()),
                f("Report", false, None),
            ),
            (
                "- [ ] Call".to_string(),
                Some("p2".to_string()),
                f("Call", false, Some("2026-12-02")),
            ),
            (
                "- [ ] Same title".to_string(),
                None,
                f("same title", false, None),
            ),
            (
                "- [ ] Local only".to_string(),
                None,
                f("Local only", false, None),
            ),
        ];
        let p = plan(&local, &remote, &base);
        assert_eq!(
            p.pull["p1"],
            f("Report", true, None),
            "done in Notion comes to the file"
        );
        assert_eq!(
            p.push["p2"].due.as_deref(),
            Some("2026-12-02"),
            "the file wins a conflict"
        );
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(
            p.add,
            vec![("p4".to_string(), f("New in Notion", false, None))]
        );
        assert_eq!(
            p.link,
            vec![("- [ ] Same title".to_string(), "p5".to_string())]
        );
        assert_eq!(p.create.len(), 1);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("Gone") && n.contains("removed")),
            "{:?}",
            p.notes
        );
        assert_eq!(link_of("Report <!-- notion:abc-1 -->"), Some("abc-1"));
    }
}

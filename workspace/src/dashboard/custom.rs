//! The person's customization of the dashboard, from `.deskhand/dashboard/`: a theme (CSS custom
//! properties, `theme.toml`), a layout (`layout.toml`: panels and their order, the default view,
//! the list's grouping, the board's columns) and optional extra CSS (`extra.css`).
//!
//! Anyone may write these files (the person, a skill, a planner told so by a web page), so none
//! of them can run script or load anything: theme values and extra CSS are checked against a
//! short list of what is allowed, and anything else is left out with a warning the page shows.
//! The page's Content-Security-Policy (`default-src 'none'`) would stop a load anyway; the
//! checks keep such CSS out of the page in the first place. A layout that does not parse falls
//! back to the built-in one, also with a visible warning.

use serde::Deserialize;

/// The folder, inside the agent's private `.deskhand/`, holding the customization files.
pub const CUSTOM_DIR: &str = "dashboard";
/// The theme file's name.
pub const THEME_FILE: &str = "theme.toml";
/// The layout file's name.
pub const LAYOUT_FILE: &str = "layout.toml";
/// The extra CSS file's name.
pub const EXTRA_CSS_FILE: &str = "extra.css";
/// The largest customization file read, in bytes.
pub const MAX_FILE: usize = 64 * 1024;

/// A panel of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Panel {
    /// TASKS.md as a board and a list.
    Tasks,
    /// Jobs per day, tasks done per week, schedule runs.
    Charts,
    /// Recent jobs.
    Jobs,
    /// Actions waiting for approval.
    Approvals,
    /// Scheduled skills.
    Schedules,
    /// Connected accounts.
    Connections,
}

/// How the tasks are shown first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Sections as columns.
    #[default]
    Board,
    /// One list, grouped.
    List,
}

/// How the list view groups tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Overdue, today, this week, later, no date, done.
    #[default]
    Due,
    /// TASKS.md's sections in file order.
    Section,
}

/// `layout.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Layout {
    /// The panels shown, in this order.
    pub panels: Vec<Panel>,
    /// The view shown first.
    pub view: View,
    /// The list view's grouping.
    pub group_by: GroupBy,
    /// The board's columns (TASKS.md section names) in order; empty: the file's sections.
    pub columns: Vec<String>,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            panels: vec![
                Panel::Approvals,
                Panel::Tasks,
                Panel::Charts,
                Panel::Jobs,
                Panel::Schedules,
                Panel::Connections,
            ],
            view: View::Board,
            group_by: GroupBy::Due,
            columns: Vec::new(),
        }
    }
}

/// The customization as the page uses it: only what passed the checks, and what did not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Custom {
    /// The layout (the built-in one if the file was missing or broken).
    pub layout: Layout,
    /// Light-mode custom properties, checked: (name without `--`, value).
    pub light: Vec<(String, String)>,
    /// Dark-mode custom properties, checked.
    pub dark: Vec<(String, String)>,
    /// Extra CSS, checked (empty if it was refused).
    pub extra_css: String,
    /// What was left out and why, shown on the page.
    pub warnings: Vec<String>,
}

/// `theme.toml`: `[light]` and `[dark]` tables of custom properties.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Theme {
    #[serde(default)]
    light: toml::Table,
    #[serde(default)]
    dark: toml::Table,
}

impl Custom {
    /// Checks the three files' contents (each `None` when the file is absent).
    pub fn from_files(theme: Option<&str>, layout: Option<&str>, extra_css: Option<&str>) -> Self {
        let mut custom = Custom::default();
        if let Some(text) = layout {
            match toml::from_str::<Layout>(text) {
                Ok(l) if l.panels.is_empty() => custom.warnings.push(format!(
                    "{LAYOUT_FILE} lists no panels; the built-in layout is shown"
                )),
                Ok(l) => custom.layout = l,
                Err(e) => custom.warnings.push(format!(
                    "{LAYOUT_FILE} is not valid ({}); the built-in layout is shown",
                    one_line(e.message())
                )),
            }
        }
        if let Some(text) = theme {
            match toml::from_str::<Theme>(text) {
                Ok(t) => {
                    custom.light = properties(&t.light, "light", &mut custom.warnings);
                    custom.dark = properties(&t.dark, "dark", &mut custom.warnings);
                }
                Err(e) => custom.warnings.push(format!(
                    "{THEME_FILE} is not valid ({}); the built-in colours are shown",
                    one_line(e.message())
                )),
            }
        }
        if let Some(css) = extra_css {
            match check_css(css) {
                Ok(()) => custom.extra_css = css.to_owned(),
                Err(why) => custom.warnings.push(format!(
                    "{EXTRA_CSS_FILE} was not applied: it {why}; extra CSS may only style the page, \
                     never load anything or leave its <style> element"
                )),
            }
        }
        custom
    }

    /// The CSS the page appends to its own: the theme's properties, then the extra CSS.
    pub fn css(&self) -> String {
        let mut out = String::new();
        let decls = |props: &[(String, String)]| {
            props
                .iter()
                .map(|(k, v)| format!("  --{k}: {v};\n"))
                .collect::<String>()
        };
        if !self.light.is_empty() {
            out.push_str(&format!(":root {{\n{}}}\n", decls(&self.light)));
        }
        if !self.dark.is_empty() {
            out.push_str(&format!(
                "@media (prefers-color-scheme: dark) {{\n:root {{\n{}}}\n}}\n",
                decls(&self.dark)
            ));
        }
        out.push_str(&self.extra_css);
        out
    }
}

/// The theme's properties that pass [`check_value`]; the others become warnings.
fn properties(
    table: &toml::Table,
    mode: &str,
    warnings: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in table {
        let checked = match value.as_str() {
            None => Err("is not a string".to_owned()),
            Some(_) if !valid_name(name) => {
                Err("has a name other than lowercase letters, digits and dashes".to_owned())
            }
            Some(v) => check_value(v).map(|()| v.trim().to_owned()),
        };
        match checked {
            Ok(v) => out.push((name.clone(), v)),
            Err(why) => warnings.push(format!(
                "{THEME_FILE}: [{mode}] {} was left out: it {why}",
                one_line(name)
            )),
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=40).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// CSS functions that fetch a resource (or did, in some browser).
const LOADING: [&str; 9] = [
    "url(",
    "src(",
    "image(",
    "image-set(",
    "cross-fade(",
    "element(",
    "paint(",
    "expression(",
    "-moz-binding",
];

/// A theme value: a colour, a length, a font list, a number — one declaration's value that
/// cannot end the declaration, the rule or the element, load anything, or hide a word from
/// these checks with an escape.
fn check_value(v: &str) -> Result<(), String> {
    if v.trim().is_empty() || v.len() > 200 {
        return Err("is empty or longer than 200 characters".into());
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || " #%.,()+-*/'\"_".contains(*c)) || c.is_control())
    {
        return Err(format!("contains {c:?}"));
    }
    if v.matches('"').count() % 2 == 1 || v.matches('\'').count() % 2 == 1 {
        return Err("has an unclosed quote".into());
    }
    if v.contains("/*") {
        return Err("contains a comment".into());
    }
    loads(v)
}

/// Extra CSS: anything that styles; nothing that loads, imports, escapes (a backslash could
/// spell `url(` unseen) or closes the `<style>` element.
fn check_css(css: &str) -> Result<(), String> {
    if css.len() > MAX_FILE {
        return Err(format!("is larger than {} KiB", MAX_FILE / 1024));
    }
    if css.contains('<') {
        return Err("contains `<`".into());
    }
    if css.contains('\\') {
        return Err("contains a backslash escape".into());
    }
    if let Some(c) = css
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(format!("contains the control character {c:?}"));
    }
    let lower = css.to_ascii_lowercase();
    for at in [
        "@import",
        "@font-face",
        "@namespace",
        "@charset",
        "@property",
    ] {
        if lower.contains(at) {
            return Err(format!("contains `{at}`"));
        }
    }
    loads(css)
}

/// Refuses the CSS functions that load, found case-insensitively and with any blank before the
/// parenthesis (`URL (` is not a function, but refusing it costs nothing).
fn loads(text: &str) -> Result<(), String> {
    let squeezed: String = text
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for word in LOADING {
        if squeezed.contains(word) {
            return Err(format!("uses `{}`", word.trim_end_matches('(')));
        }
    }
    for word in ["javascript:", "behavior:", "behaviour:"] {
        if squeezed.contains(word) {
            return Err(format!("contains `{word}`"));
        }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_theme_sets_custom_properties_for_both_modes() {
        let c = Custom::from_files(
            Some("[light]\naccent = \"#8a2be2\"\nfont = \"'Iowan Old Style', serif\"\n[dark]\nbg = \"rgb(10, 10, 20)\"\n"),
            None,
            None,
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let css = c.css();
        assert!(css.contains("--accent: #8a2be2;"));
        assert!(css.contains("--font: 'Iowan Old Style', serif;"));
        assert!(
            css.contains("@media (prefers-color-scheme: dark)")
                && css.contains("--bg: rgb(10, 10, 20);")
        );
    }

    #[test]
    fn hostile_theme_values_are_left_out_with_a_warning() {
        let c = Custom::from_files(
            Some(concat!(
                "[light]\n",
                "accent = \"red; } body { display: none\"\n",
                "bg = \"url(https://evil.example/x.png)\"\n",
                "card = \"</style><script>alert(1)</script>\"\n",
                "line = \"u\\\\72 l(https://evil.example/)\"\n",
                "text = \"IMAGE-SET( 'https://evil.example/a.png' 1x)\"\n",
                "muted = \"'unclosed\"\n",
                "\"Bad Name\" = \"red\"\n",
                "good = \"#123456\"\n",
            )),
            None,
            None,
        );
        assert_eq!(c.light, vec![("good".to_string(), "#123456".to_string())]);
        assert_eq!(c.warnings.len(), 7, "{:#?}", c.warnings);
        assert_eq!(c.css(), ":root {\n  --good: #123456;\n}\n");
    }

    #[test]
    fn extra_css_that_loads_or_escapes_is_refused_whole() {
        for bad in [
            "body { background: url(https://evil.example/x) }",
            "body { background: URL ( 'https://evil.example/x' ) }",
            "@import 'https://evil.example/a.css';",
            "@font-face { font-family: x; src: local(x) }",
            "body { background: u\\72 l(https://evil.example/x) }",
            "</style><script>alert(1)</script>",
            "body { behavior: url(x.htc) }",
            "div { background-image: image-set('a.png' 1x) }",
            "div { background: -webkit-image-set('a.png' 1x) }",
        ] {
            let c = Custom::from_files(None, None, Some(bad));
            assert!(c.extra_css.is_empty(), "{bad}");
            assert_eq!(c.warnings.len(), 1, "{bad}");
            assert!(
                c.warnings[0].starts_with("extra.css was not applied"),
                "{bad}"
            );
        }
        let ok = ".card { border-radius: 2px; } h1 > span { color: var(--accent) }";
        let c = Custom::from_files(None, None, Some(ok));
        assert_eq!(c.extra_css, ok);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn a_layout_orders_panels_and_a_broken_one_falls_back() {
        let c = Custom::from_files(
            None,
            Some("panels = [\"tasks\", \"charts\"]\nview = \"list\"\ngroup_by = \"section\"\ncolumns = [\"Inbox\", \"Done\"]\n"),
            None,
        );
        assert_eq!(c.layout.panels, [Panel::Tasks, Panel::Charts]);
        assert_eq!(
            (c.layout.view, c.layout.group_by),
            (View::List, GroupBy::Section)
        );
        assert_eq!(c.layout.columns, ["Inbox", "Done"]);
        for broken in [
            "panels = [\"tasks\", \"weather\"]",
            "view = 3",
            "panels = [",
            "colour = \"red\"",
            "panels = []",
        ] {
            let c = Custom::from_files(None, Some(broken), None);
            assert_eq!(c.layout, Layout::default(), "{broken}");
            assert_eq!(c.warnings.len(), 1, "{broken}");
            assert!(
                c.warnings[0].contains("the built-in layout is shown"),
                "{broken}"
            );
        }
    }
}

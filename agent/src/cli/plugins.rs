//! `deskhand plugins install|list|show|update|remove|enable|disable|available`: Claude-format
//! plugins (see [`crate::plugins`]).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::cli::safe_text::print_json;
use crate::plugins::install::{self, PluginError, Record};
use crate::plugins::{self, marketplace, servers::ServerKind, Plugin, State};
use crate::{errln, out, outln};

/// `deskhand plugins`.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    cmd: PluginsCmd,
}

#[derive(Debug, Subcommand)]
enum PluginsCmd {
    /// Install a plugin from a folder, a git URL (`URL//SUBFOLDER` for one inside) or a
    /// marketplace (`MARKETPLACE-DIR#PLUGIN`), after showing everything it brings.
    Install {
        /// Folder, git URL, or MARKETPLACE-DIR#PLUGIN.
        source: String,
        /// Accept without asking (for scripts; read what it brings first).
        #[arg(long)]
        yes: bool,
        /// Allow its command hooks to run (a plugin with hooks is installed disabled without).
        #[arg(long)]
        allow_hooks: bool,
    },
    /// The installed plugins and whether each is in use.
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Everything one installed plugin brings and may touch.
    Show {
        /// Its name.
        name: String,
    },
    /// Fetch an installed plugin again from where it came from; asks again if it may touch more.
    Update {
        /// Its name.
        name: String,
        /// Accept without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Remove an installed plugin, its files and its data folder.
    Remove {
        /// Its name.
        name: String,
    },
    /// Put an installed plugin's parts in use.
    Enable {
        /// Its name.
        name: String,
        /// Allow its command hooks to run (required for a plugin that has them).
        #[arg(long)]
        allow_hooks: bool,
    },
    /// Take an installed plugin's parts out of use (its files stay).
    Disable {
        /// Its name.
        name: String,
    },
    /// The plugins a marketplace folder lists.
    Available {
        /// A folder with .claude-plugin/marketplace.json.
        marketplace: String,
    },
}

/// Run `deskhand plugins …`.
pub fn run(a: PluginsArgs, ws: &Path) -> anyhow::Result<()> {
    match a.cmd {
        PluginsCmd::Install {
            source,
            yes,
            allow_hooks,
        } => install_cmd(ws, &source, yes, allow_hooks),
        PluginsCmd::List { json } => list(ws, json),
        PluginsCmd::Show { name } => show_installed(ws, &name),
        PluginsCmd::Update { name, yes } => update(ws, &name, yes),
        PluginsCmd::Remove { name } => {
            let mut reg = install::registry(ws)?;
            if reg.remove(&name).is_none() {
                bail!(PluginError::NotInstalled(name));
            }
            install::remove_files(ws, &name)?;
            install::save(ws, &reg)?;
            outln!("removed plugin {name} (its files and its data folder)")?;
            Ok(())
        }
        PluginsCmd::Enable { name, allow_hooks } => enable(ws, &name, allow_hooks),
        PluginsCmd::Disable { name } => {
            let mut reg = install::registry(ws)?;
            let r = reg
                .get_mut(&name)
                .ok_or_else(|| PluginError::NotInstalled(name.clone()))?;
            r.enabled = false;
            install::save(ws, &reg)?;
            outln!("plugin {name} is disabled: its skills, commands, agents, servers and hooks are off")?;
            Ok(())
        }
        PluginsCmd::Available { marketplace } => {
            for entry in marketplace::list(Path::new(&marketplace)).map_err(anyhow::Error::msg)? {
                match entry {
                    Ok(l) => outln!("{:<24} {}  ({})", l.name, l.description, l.source)?,
                    Err((name, why)) => outln!("{name:<24} cannot be installed: {why}")?,
                }
            }
            Ok(())
        }
    }
}

fn install_cmd(ws: &Path, spec: &str, yes: bool, allow_hooks: bool) -> anyhow::Result<()> {
    let source = install::parse_spec(spec)?;
    let fetched = install::fetch(&source)?;
    let plugin = install::check(&fetched.dir)?;
    if install::registry(ws)?.contains_key(&plugin.name)
        || install::installed_dir(ws, &plugin.name).exists()
    {
        bail!(PluginError::Exists(plugin.name));
    }
    show(&plugin)?;
    if !confirm(yes, &format!("Install plugin {}?", plugin.name))? {
        bail!("not installed");
    }
    let (installed, tree) = install::copy_in(ws, &fetched.dir, &plugin.name, false)?;
    let hooks = install::has_command_hooks(&installed);
    let enabled = !hooks || allow_hooks;
    let mut reg = install::registry(ws)?;
    reg.insert(
        installed.name.clone(),
        Record {
            source: install::recorded_spec(spec),
            version: installed.version.clone(),
            tree,
            enabled,
            hooks_allowed: hooks && allow_hooks,
            grants: install::grants(&installed),
            installed: chrono::Utc::now().to_rfc3339(),
        },
    );
    install::save(ws, &reg)?;
    outln!(
        "installed plugin {} in {}",
        installed.name,
        install::installed_dir(ws, &installed.name).display()
    )?;
    if enabled {
        print_use(&installed)?;
    } else {
        outln!(
            "it is DISABLED: it has command hooks, which run programs on your machine. Read them \
             above; `deskhand plugins enable {} --allow-hooks` turns it on with them.",
            installed.name
        )?;
    }
    Ok(())
}

fn update(ws: &Path, name: &str, yes: bool) -> anyhow::Result<()> {
    let mut reg = install::registry(ws)?;
    let old = reg
        .get(name)
        .cloned()
        .ok_or_else(|| PluginError::NotInstalled(name.into()))?;
    let source = install::parse_spec(&old.source)?;
    let fetched = install::fetch(&source)?;
    let plugin = install::check(&fetched.dir)?;
    if plugin.name != name {
        bail!(
            "{} now holds plugin {:?}, not {name}; remove {name} and install the new one",
            old.source,
            plugin.name
        );
    }
    let grants = install::grants(&plugin);
    let added: Vec<&String> = grants.iter().filter(|g| !old.grants.contains(g)).collect();
    let hooks = install::has_command_hooks(&plugin);
    if !added.is_empty() {
        show(&plugin)?;
        outln!("\nThe update may touch more than the version you accepted:")?;
        for g in &added {
            outln!("  + {g}")?;
        }
        if !confirm(yes, &format!("Update plugin {name}?"))? {
            bail!("not updated; the installed version stays");
        }
    }
    let (installed, tree) = install::copy_in(ws, &fetched.dir, name, true)?;
    // New hooks are not allowed by an earlier "yes" to none.
    let hooks_allowed = old.hooks_allowed && hooks;
    let enabled = old.enabled && (!hooks || hooks_allowed);
    reg.insert(
        name.to_string(),
        Record {
            source: old.source.clone(),
            version: installed.version.clone(),
            tree,
            enabled,
            hooks_allowed,
            grants,
            installed: chrono::Utc::now().to_rfc3339(),
        },
    );
    install::save(ws, &reg)?;
    outln!(
        "updated plugin {name} to {}{}",
        installed.version.as_deref().unwrap_or("(no version)"),
        if old.enabled && !enabled {
            format!("; it is DISABLED: it now has command hooks; `deskhand plugins enable {name} --allow-hooks` after reading them")
        } else {
            String::new()
        }
    )?;
    Ok(())
}

fn enable(ws: &Path, name: &str, allow_hooks: bool) -> anyhow::Result<()> {
    let all = plugins::installed(ws)?;
    let i = all
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| PluginError::NotInstalled(name.into()))?;
    let Some(p) = &i.plugin else {
        bail!(
            "plugin {name} cannot be enabled: {}",
            i.state.describe(name)
        );
    };
    if i.state == State::Modified {
        bail!(
            "plugin {name} cannot be enabled: {}",
            i.state.describe(name)
        );
    }
    let hooks = install::has_command_hooks(p);
    if hooks && !allow_hooks && !i.record.hooks_allowed {
        for h in p.hooks.iter().filter(|h| h.supported()) {
            errln!("  hook {} [{}]: runs {}", h.event, h.matcher, h.command);
        }
        bail!(
            "plugin {name} has command hooks (above), which run programs on your machine; \
             read them, then `deskhand plugins enable {name} --allow-hooks`"
        );
    }
    let mut reg = install::registry(ws)?;
    if let Some(r) = reg.get_mut(name) {
        r.enabled = true;
        r.hooks_allowed = hooks && (allow_hooks || r.hooks_allowed);
    }
    install::save(ws, &reg)?;
    outln!("plugin {name} is enabled")?;
    print_use(p)?;
    Ok(())
}

fn list(ws: &Path, json: bool) -> anyhow::Result<()> {
    let all = plugins::installed(ws)?;
    if json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "version": i.record.version,
                    "source": i.record.source,
                    "state": match i.state {
                        State::Active => "enabled",
                        State::Disabled => "disabled",
                        State::Modified => "modified",
                        State::Broken(_) => "broken",
                    },
                    "hooks_allowed": i.record.hooks_allowed,
                    "skills": i.plugin.as_ref().map(|p| p.skills.len()),
                    "commands": i.plugin.as_ref().map(|p| p.commands.len()),
                    "agents": i.plugin.as_ref().map(|p| p.agents.len()),
                    "servers": i.plugin.as_ref().map(|p| p.servers.len()),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(v), true)?;
        return Ok(());
    }
    if all.is_empty() {
        outln!(
            "no plugins installed; `deskhand plugins install PATH|GIT-URL|MARKETPLACE-DIR#PLUGIN`"
        )?;
    }
    for i in &all {
        let parts = i
            .plugin
            .as_ref()
            .map(|p| {
                format!(
                    "{} skills, {} commands, {} agents, {} MCP servers, {} hooks",
                    p.skills.len(),
                    p.commands.len(),
                    p.agents.len(),
                    p.servers.len(),
                    p.hooks.len()
                )
            })
            .unwrap_or_default();
        outln!(
            "{:<20} {:<10} {}  {}",
            i.name,
            i.record.version.as_deref().unwrap_or("-"),
            i.state.describe(&i.name),
            parts
        )?;
    }
    Ok(())
}

fn show_installed(ws: &Path, name: &str) -> anyhow::Result<()> {
    let all = plugins::installed(ws)?;
    let i = all
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| PluginError::NotInstalled(name.into()))?;
    outln!("source: {}", i.record.source)?;
    outln!(
        "state: {}{}",
        i.state.describe(name),
        if i.record.hooks_allowed {
            " (hooks allowed)"
        } else {
            ""
        }
    )?;
    if let Some(p) = &i.plugin {
        show(p)?;
    }
    Ok(())
}

/// Everything a plugin brings and what each part may touch.
fn show(p: &Plugin) -> std::io::Result<()> {
    outln!(
        "plugin {} {}",
        p.name,
        p.version.as_deref().unwrap_or("(no version)")
    )?;
    if !p.description.is_empty() {
        outln!("  {}", p.description)?;
    }
    let planner = "runs through the planner with its permissions ([planner.permissions])";
    if !p.skills.is_empty() {
        outln!("skills:")?;
        for s in &p.skills {
            let m = &s.manifest;
            outln!("  /{}:{}  {}", p.name, m.front.name, m.front.description)?;
            if m.executable {
                let perms = &m.permissions;
                outln!(
                    "    runs its steps; may touch: connectors {:?}, browser {:?}, writes {:?}, reads {:?}, without asking {:?}",
                    perms.connectors, perms.browser, perms.workspace, perms.read, perms.without_asking
                )?;
            } else {
                outln!("    prompt-only: {planner}")?;
            }
        }
    }
    if !p.commands.is_empty() {
        outln!("commands:")?;
        for c in &p.commands {
            outln!(
                "  /{}:{}{}  {}",
                p.name,
                c.name,
                c.argument_hint
                    .as_ref()
                    .map(|h| format!(" {h}"))
                    .unwrap_or_default(),
                c.description
            )?;
            outln!(
                "    {planner}{}",
                match &c.allowed_tools {
                    Some(t) => format!("; only the tools {}", t.join(", ")),
                    None => String::new(),
                }
            )?;
            if let Some(m) = &c.model {
                outln!("    asks for model {m}; Deskhand uses the configured model")?;
            }
        }
    }
    if !p.agents.is_empty() {
        outln!("agents (sub-agents the planner may hand tasks to):")?;
        for a in &p.agents {
            outln!(
                "  {}:{}  {}{}{}",
                p.name,
                a.name,
                a.description,
                a.tools
                    .as_ref()
                    .map(|t| format!("; tools {}", t.join(", ")))
                    .unwrap_or_default(),
                a.max_turns
                    .map(|n| format!("; at most {n} turns"))
                    .unwrap_or_default()
            )?;
        }
    }
    if !p.servers.is_empty() {
        outln!(
            "MCP servers (started with planned jobs; tools not marked read-only ask you first):"
        )?;
        for s in &p.servers {
            outln!("  {}  {}", s.name, s.shown())?;
        }
    }
    if !p.hooks.is_empty() {
        outln!("hooks:")?;
        for h in &p.hooks {
            outln!(
                "  {} [{}] {}: {}{}",
                h.event,
                if h.matcher.is_empty() {
                    "*"
                } else {
                    &h.matcher
                },
                h.kind,
                h.command,
                if h.supported() {
                    "  — RUNS A PROGRAM on your machine if you allow its hooks"
                } else {
                    "  — not supported, never runs"
                }
            )?;
        }
    }
    for w in &p.warnings {
        outln!("note: {w}")?;
    }
    Ok(())
}

/// How to use what an enabled plugin brings.
fn print_use(p: &Plugin) -> std::io::Result<()> {
    if let Some(c) = p.commands.first() {
        outln!("run a command: deskhand /{}:{} …", p.name, c.name)?;
    }
    let needs: Vec<&str> = p
        .servers
        .iter()
        .filter(|s| matches!(s.kind, ServerKind::NeedsConfiguration(_)))
        .map(|s| s.name.as_str())
        .collect();
    if !needs.is_empty() {
        outln!(
            "MCP servers that need configuration first: {}",
            needs.join(", ")
        )?;
    }
    Ok(())
}

fn confirm(yes: bool, question: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{question} — not a terminal; read what it brings above and pass --yes to accept");
    }
    out!("{question} [y/N] ")?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

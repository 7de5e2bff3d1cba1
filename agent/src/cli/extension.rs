//! `deskhand extension install|status` and `deskhand native-host` (what the browser starts).

use crate::cli::safe_text::print_json;
use crate::outln;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::extension::install::{self, BrowserKind, InstallOptions};

/// `deskhand extension`.
#[derive(Debug, Args)]
pub struct ExtensionArgs {
    #[command(subcommand)]
    command: ExtensionCommand,
}

#[derive(Debug, Subcommand)]
enum ExtensionCommand {
    /// Write the extension folder and register the native host with the browser.
    Install {
        /// Which browser's per-user folder gets the host manifest.
        #[arg(long, value_enum, default_value = "chrome")]
        browser: BrowserKind,
        /// For a browser started with --user-data-dir: register the host there.
        #[arg(long)]
        user_data_dir: Option<PathBuf>,
        /// Grant a site up front (repeatable), as "Allow on this site" in the popup would.
        #[arg(long = "allow-origin")]
        allow_origins: Vec<String>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Is the extension connected to the running agent?
    Status {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The tabs of your browser, with the ids a job can name (`target=tab:ID`).
    Tabs {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `deskhand native-host ORIGIN`: started by the browser, never by hand.
#[derive(Debug, Args)]
pub struct NativeHostArgs {
    /// What the browser passes: the caller's origin (`chrome-extension://ID/`), then maybe more.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Run `deskhand extension`.
pub async fn run(args: ExtensionArgs, ws: &Path) -> anyhow::Result<()> {
    match args.command {
        ExtensionCommand::Install {
            browser,
            user_data_dir,
            allow_origins,
            json,
        } => {
            let exe = std::env::current_exe().context("finding this deskhand executable")?;
            let got = install::install(
                ws,
                &InstallOptions {
                    browser,
                    user_data_dir,
                    allow_origins,
                    exe,
                },
            )
            .context("installing the extension")?;
            if json {
                print_json(&got, true)?;
            } else {
                outln!("extension folder: {}", got.extension_dir.display())?;
                outln!("  load it in chrome://extensions → Developer mode → Load unpacked")?;
                outln!("extension id:     {}", got.id)?;
                outln!("native host:      {}", got.host_manifest.display())?;
                outln!("then start the agent (`deskhand serve`); the toolbar icon shows the link")?;
            }
            Ok(())
        }
        ExtensionCommand::Tabs { json } => {
            let v = crate::extension::hub::tabs(ws).await?;
            if v["ok"] != true {
                anyhow::bail!(
                    "{}",
                    v["error"].as_str().unwrap_or("the extension gave no tabs")
                );
            }
            if json {
                print_json(&v["tabs"], false)?;
            } else {
                for t in v["tabs"].as_array().into_iter().flatten() {
                    let front = if t["active"] == true { "*" } else { " " };
                    outln!(
                        "{front} tab:{:<6} {}  {}",
                        t["id"],
                        t["url"].as_str().unwrap_or_default(),
                        t["title"].as_str().unwrap_or_default()
                    )?;
                }
            }
            Ok(())
        }
        ExtensionCommand::Status { json } => {
            let v = crate::extension::hub::status(ws).await?;
            if json {
                print_json(&v, false)?;
            } else if v["connected"] == true {
                outln!(
                    "connected: extension {} version {}",
                    v["extension"]["extension_id"].as_str().unwrap_or("?"),
                    v["extension"]["version"].as_str().unwrap_or("?")
                )?;
            } else {
                outln!("not connected: open your browser with the Deskhand extension loaded (`deskhand extension install` shows the folder)")?;
            }
            Ok(())
        }
    }
}

/// Run the native host until the browser closes it.
pub async fn native_host(args: NativeHostArgs, ws: &Path) -> anyhow::Result<()> {
    let origin = args
        .args
        .iter()
        .find(|a| a.starts_with("chrome-extension://"))
        .or(args.args.first())
        .cloned()
        .unwrap_or_default();
    crate::extension::host::run(ws, &origin).await?;
    Ok(())
}

//! `deskhand secrets set|list|forget`: secret values for forms (passwords, account numbers) that
//! jobs fill by name (`{{secret:NAME}}`) without the model, the transcript or the audit ever
//! holding them; each is filled only on the sites it was stored for.

use std::path::Path;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::guard::form_secrets;
use crate::outln;

/// `deskhand secrets`.
#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Store a secret (its value read from standard input, never from the command line).
    Set {
        /// Its name; jobs write `{{secret:NAME}}` where the value goes.
        name: String,
        /// A site it may be filled on (repeatable): its origin is kept, e.g. https://bank.example.
        #[arg(long = "site", value_name = "URL", required = true)]
        sites: Vec<String>,
    },
    /// The secrets stored, with their sites (never their values).
    List,
    /// Forget a secret.
    Forget {
        /// Its name.
        name: String,
    },
    /// Store the NATS user's password or the NATS token (from standard input) for the queue or
    /// hub; `--forget` removes it.
    Nats {
        /// `password` (with `[nats] user`) or `token`.
        #[arg(value_parser = ["password", "token"])]
        what: String,
        /// Remove it instead.
        #[arg(long)]
        forget: bool,
    },
}

/// Run `deskhand secrets`.
pub fn run(a: SecretsArgs, ws: &Path, config: &Config) -> anyhow::Result<()> {
    match a.command {
        SecretsCommand::Set { name, sites } => {
            let value = super::connect::read_stdin_secret("secret value")?;
            let store = crate::connect::open_secrets(ws, config)?;
            let s = form_secrets::set(ws, &store, &name, &value, &sites)?;
            outln!(
                "stored {} for {}: jobs fill it with {{{{secret:{}}}}}",
                s.name,
                s.sites.join(", "),
                s.name
            )?;
        }
        SecretsCommand::Nats { what, forget } => {
            let key = if what == "password" {
                crate::queue::auth::PASSWORD_KEY
            } else {
                crate::queue::auth::TOKEN_KEY
            };
            let store = crate::connect::open_secrets(ws, config)?;
            if forget {
                store.delete(key)?;
                outln!("forgot the NATS {what}")?;
            } else {
                let value = super::connect::read_stdin_secret(&format!("NATS {what}"))?;
                store.set(key, &value)?;
                outln!("stored the NATS {what} in {}", store.describe())?;
            }
        }
        SecretsCommand::List => {
            let all = form_secrets::list(ws)?;
            if all.is_empty() {
                outln!("No secrets; `deskhand secrets set NAME --site URL` stores one.")?;
            }
            for s in all {
                outln!("{:<20} {}", s.name, s.sites.join(", "))?;
            }
        }
        SecretsCommand::Forget { name } => {
            let store = crate::connect::open_secrets(ws, config)?;
            form_secrets::forget(ws, &store, &name)?;
            outln!("forgot {name}")?;
        }
    }
    Ok(())
}

//! `deskhand model set-key|forget-key|status`: the planner's model key in the OS keyring, and
//! which model, server and key a planned job would use. The key is read from standard input or a
//! hidden prompt, never from the command line (argv is visible to every process).

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use deskhand_model::Provider;

use crate::agent::config::AgentEnv;
use crate::config::{Config, KeySource};
use crate::{errln, outln};

/// `deskhand model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    cmd: ModelCmd,
}

#[derive(Debug, Subcommand)]
enum ModelCmd {
    /// Store the API key in the OS keyring (read from standard input, or a hidden prompt).
    SetKey(ProviderArg),
    /// Remove the stored API key.
    ForgetKey(ProviderArg),
    /// The provider, model, base URL and where the key comes from (never the key).
    Status,
}

#[derive(Debug, Args)]
struct ProviderArg {
    /// anthropic or openai (default: the configured provider).
    #[arg(long)]
    provider: Option<String>,
}

/// Run `deskhand model …`.
pub fn run(args: ModelArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let env = AgentEnv::read();
    match args.cmd {
        ModelCmd::SetKey(p) => {
            let provider = provider(p, &env, config)?;
            let key = read_key(provider)?;
            let place = crate::model_key::store(workspace, config, provider, &key)?;
            outln!("stored the {} key in {place}", provider.as_str())?;
            if let Some(v) = env_key(&env, provider) {
                errln!("note: {v} is set in the environment and wins over the stored key");
            }
        }
        ModelCmd::ForgetKey(p) => {
            let provider = provider(p, &env, config)?;
            let place = crate::model_key::forget(workspace, config, provider)?;
            outln!("no {} key stored in {place} now", provider.as_str())?;
        }
        ModelCmd::Status => status(workspace, config, &env)?,
    }
    Ok(())
}

fn status(workspace: &Path, config: &Config, env: &AgentEnv) -> anyhow::Result<()> {
    let settings = crate::config::model_settings(
        config,
        |k| env.model.get(k).cloned(),
        |p| crate::model_key::read(workspace, config, p),
    )?;
    let Some((m, source)) = settings else {
        outln!(
            "no model configured: set [model] provider and model in {} (or DESKHAND_MODEL_PROVIDER \
             and DESKHAND_MODEL); see docs/agent.md",
            Config::path(workspace).display()
        )?;
        return Ok(());
    };
    outln!("provider  {}", m.provider.as_str())?;
    outln!("model     {}", m.model)?;
    outln!("base URL  {}", m.base_url)?;
    outln!("key       {source}")?;
    let public = url::Url::parse(m.provider.default_base_url()).ok();
    if source == KeySource::None && public.is_some_and(|u| u.origin() == m.base_url.origin()) {
        outln!("          (the provider's endpoint needs one: `deskhand model set-key`)")?;
    }
    match m.price {
        Some(p) => outln!(
            "prices    ${} input, ${} output per million tokens",
            p.input_per_mtok,
            p.output_per_mtok
        )?,
        None => outln!("prices    not set (tokens are recorded; cost needs [model] input_price_per_mtok and output_price_per_mtok)")?,
    }
    Ok(())
}

/// The provider named on the command line, else the configured one.
fn provider(p: ProviderArg, env: &AgentEnv, config: &Config) -> anyhow::Result<Provider> {
    let name = p
        .provider
        .or_else(|| env.model.get("DESKHAND_MODEL_PROVIDER").cloned())
        .or_else(|| config.model.provider.clone())
        .context(
            "which provider is the key for? Pass --provider anthropic or --provider openai, or \
             set [model] provider in the config",
        )?;
    Ok(name.parse()?)
}

/// The environment variable whose key would win over the keyring's, if one is set.
fn env_key(env: &AgentEnv, provider: Provider) -> Option<&'static str> {
    let own = match provider {
        Provider::Anthropic => "ANTHROPIC_API_KEY",
        Provider::Openai => "OPENAI_API_KEY",
    };
    ["DESKHAND_MODEL_API_KEY", own]
        .into_iter()
        .find(|v| env.model.get(*v).is_some_and(|k| !k.trim().is_empty()))
}

/// The key from a hidden prompt on a terminal, else all of standard input.
fn read_key(provider: Provider) -> anyhow::Result<String> {
    let key = if std::io::stdin().is_terminal() {
        // The prompt goes where the person sees it; the key is read from the terminal itself.
        let term = if crate::cli::safe_text::stderr_is_terminal() {
            console::Term::stderr()
        } else {
            console::Term::stdout()
        };
        errln!("{} API key (not shown as you type):", provider.as_str());
        term.read_secure_line()
            .context("reading the key from the terminal")?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the key from standard input")?;
        s
    };
    let key = key.trim().to_string();
    anyhow::ensure!(
        !key.is_empty(),
        "no key given; pipe it in (`printf %s \"$KEY\" | deskhand model set-key`) or type it at \
         the prompt"
    );
    Ok(key)
}

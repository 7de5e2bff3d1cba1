//! `deskhand mcp`: Deskhand as an MCP server on stdio (docs/mcp.md).

use std::path::Path;

use anyhow::Context;
use clap::Args;
use rmcp::ServiceExt;

use crate::agent::{Agent, AgentConfig};
use crate::config::Config;
use crate::mcp::server::DeskhandMcp;

/// `deskhand mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    browser: super::BrowserArgs,
}

/// Serve until the client closes stdin. Stdout carries the protocol only: logs go to stderr.
pub async fn run(a: McpArgs, workspace: &Path, config: &Config) -> anyhow::Result<()> {
    let cfg = AgentConfig::for_run_now(
        workspace,
        config,
        a.browser.launch_options(workspace, config)?,
    )?;
    let agent = Agent::start(cfg).await?;
    tracing::info!(workspace = %workspace.display(), "serving MCP on stdio");
    let service = DeskhandMcp::new(agent, workspace.to_path_buf())
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not complete the handshake on stdin/stdout")?;
    let why = service.waiting().await.context("the MCP server stopped")?;
    tracing::info!(reason = ?why, "MCP client gone; stopping");
    Ok(())
}

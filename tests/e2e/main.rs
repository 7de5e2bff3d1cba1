//! End-to-end tests: real headless Chromium (CDP and WebDriver), real HTTP over loopback, the real
//! `deskhand` binary. One binary, a module per topic; every browser test runs on both backends.

#[macro_use]
mod util;

mod attacks;
mod calendar_write;
mod cli;
mod connectors;
mod controls;
mod dashboard;
mod dates;
mod dispatch;
mod doctor;
mod drafts;
mod eval;
mod extension;
mod extract;
mod fill;
mod guard;
mod hardening_cli;
mod held;
mod hub;
mod installed;
mod interact;
mod mcp_client;
mod mcp_oauth;
mod mcp_server;
mod nats_auth;
mod openapi;
mod organize;
mod planner;
mod plugins;
mod processes;
mod provider_api;
mod schedules;
mod secrets;
mod service;
mod skills;
mod slides;
mod step_data;

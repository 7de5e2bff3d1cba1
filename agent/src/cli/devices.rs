//! `deskhand pair [NAME]` and `deskhand devices list|revoke ID`: the devices whose signed jobs
//! this agent accepts.

use crate::cli::safe_text::print_json;
use crate::outln;
use std::path::Path;

use clap::{Args, Subcommand};

use crate::guard::devices::Devices;

/// `deskhand pair`.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// What to call the device ("Ada's phone").
    #[arg(default_value = "phone")]
    name: String,
    /// The hub's WebSocket URL the phone page connects to (wss://hub.example.com:8443): the QR
    /// code then opens the page on the hub, and the hub's users entry is printed.
    #[arg(long, value_name = "WSS-URL")]
    hub: Option<String>,
    /// Where the phone page is served (any static host, docs/hub.md); default: this desktop's
    /// API on 127.0.0.1 (this machine only).
    #[arg(long, value_name = "URL")]
    page: Option<String>,
    /// The agent the phone reaches (default: `[agent] name`, else "default").
    #[arg(long)]
    agent: Option<String>,
    /// This desktop's JetStream domain when it runs its own nats-server as a leaf of the hub
    /// (docs/hub/leaf.conf: `desk`): the phone reads state and files there.
    #[arg(long)]
    domain: Option<String>,
}

/// `deskhand devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(subcommand)]
    command: Option<DevicesCommand>,
}

#[derive(Debug, Subcommand)]
enum DevicesCommand {
    /// Paired devices (the default).
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Refuse this device's jobs from now on.
    Revoke {
        /// The device id (`dev-…`).
        id: String,
    },
}

/// Run `deskhand pair`.
pub fn pair(
    args: PairArgs,
    workspace: &Path,
    config: &crate::config::Config,
) -> anyhow::Result<()> {
    let hub = args.hub.as_deref().map(hub_url).transpose()?;
    let (device, secret) = Devices::new(workspace).pair(&args.name)?;
    crate::store::Store::open(workspace)?.audit().record(
        "device.paired",
        None,
        serde_json::json!({"device": device.id, "name": device.name, "public_key": device.public_key}),
    );
    outln!("Paired {} ({}).", device.name, device.id)?;
    outln!()?;
    let Some(hub) = hub else {
        outln!("Its key, shown this once (keep it like a password; this agent stores only the public half):")?;
        outln!()?;
        outln!("  {secret}")?;
        outln!()?;
        // The same key for a phone's camera.
        if let Some(code) = qr(&secret) {
            outln!("{code}")?;
        }
        outln!("On the phone page: paste it under \"Device key\" (or open the page's URL with #device=KEY);")?;
        outln!("every request and job is then signed on the phone.")?;
        outln!("Sign jobs with it: deskhand dispatch --device-key '{secret}' SKILL …")?;
        outln!("Revoke it: deskhand devices revoke {}", device.id)?;
        return Ok(());
    };
    let agent = args
        .agent
        .or_else(|| config.agent.name.clone())
        .unwrap_or_else(|| "default".into());
    let page = args.page.unwrap_or_else(|| {
        let port = config.agent.api_port.unwrap_or(7878);
        format!("http://127.0.0.1:{port}/")
    });
    let domain = args.domain.filter(|d| !d.trim().is_empty());
    let mut link = pairing_link(&page, &hub, &agent, &secret);
    if let Some(d) = &domain {
        link.push_str("&domain=");
        link.push_str(&url::form_urlencoded::byte_serialize(d.as_bytes()).collect::<String>());
    }
    let key = crate::guard::devices::DeviceKey::parse(&secret)?;
    outln!(
        "Open this link on the phone (the key is in the part after #, which no server receives;"
    )?;
    outln!("shown this once, keep it like a password):")?;
    outln!()?;
    outln!("  {link}")?;
    outln!()?;
    if let Some(code) = qr(&link) {
        outln!("{code}")?;
    }
    outln!(
        "On the hub, add this user to the account of this desktop in users.conf (docs/hub.md),"
    )?;
    outln!("then reload it (nats-server --signal reload):")?;
    outln!()?;
    outln!(
        "  {}",
        crate::hub::users::phone_user(
            &agent,
            &device.id,
            &key.hub_nkey().public_key(),
            domain.as_deref()
        )
    )?;
    outln!()?;
    outln!(
        "Revoke it: deskhand devices revoke {} (and remove the line on the hub)",
        device.id
    )?;
    Ok(())
}

/// The hub URL as the phone's browser takes it: WebSocket, TLS unless on loopback.
fn hub_url(raw: &str) -> anyhow::Result<String> {
    let u = url::Url::parse(raw.trim()).map_err(|e| {
        anyhow::anyhow!("--hub {raw:?} is not a URL ({e}); write wss://hub.example.com:8443")
    })?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match u.scheme() {
        "wss" => Ok(u.to_string()),
        "ws" if loopback => Ok(u.to_string()),
        "ws" => anyhow::bail!("--hub {raw}: a phone reaches the hub over the internet, so it must be wss:// (TLS); ws:// is taken only on loopback"),
        other => anyhow::bail!("--hub takes the hub's WebSocket URL (wss://…), not {other}://; the desktop's own queue URL goes in [agent] queue"),
    }
}

/// The page's URL with the hub, the agent and the device key in the fragment.
pub(crate) fn pairing_link(page: &str, hub: &str, agent: &str, secret: &str) -> String {
    let frag: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("hub", hub)
        .append_pair("agent", agent)
        .append_pair("device", secret)
        .finish();
    let base = page.split('#').next().unwrap_or(page);
    format!("{base}#{frag}")
}

/// A QR code of `text` drawn with half-block characters (two rows per line) and its quiet zone.
/// Dark modules are spaces and light ones blocks: right for light text on a dark terminal, and
/// phone scanners read the inverted code as well.
fn qr(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// Run `deskhand devices`.
pub fn devices(args: DevicesArgs, workspace: &Path) -> anyhow::Result<()> {
    let devices = Devices::new(workspace);
    match args.command.unwrap_or(DevicesCommand::List { json: false }) {
        DevicesCommand::List { json } => {
            let list = devices.list()?;
            if json {
                print_json(&list, true)?;
                return Ok(());
            }
            if list.is_empty() {
                outln!("No devices paired. `deskhand pair NAME` pairs one.")?;
            }
            for d in list {
                outln!(
                    "{:<16} {:<24} paired {}{}",
                    d.id,
                    d.name,
                    d.paired_at.format("%Y-%m-%d %H:%M UTC"),
                    d.revoked_at
                        .map(|t| format!(", REVOKED {}", t.format("%Y-%m-%d %H:%M UTC")))
                        .unwrap_or_default()
                )?;
            }
        }
        DevicesCommand::Revoke { id } => {
            let d = devices.revoke(&id)?;
            crate::store::Store::open(workspace)?.audit().record(
                "device.revoked",
                None,
                serde_json::json!({"device": d.id, "name": d.name}),
            );
            outln!(
                "revoked {} ({}): its jobs are refused from now on",
                d.id,
                d.name
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hub_link_holds_hub_agent_and_key_after_the_hash_and_fits_a_qr_code() {
        let secret = format!("dh1.dev-0123456789ab.{}", "A".repeat(43));
        let link = super::pairing_link(
            "https://me.github.io/deskhand/",
            "wss://hub.example.com:8443/",
            "desk",
            &secret,
        );
        let (page, frag) = link.split_once('#').unwrap();
        assert_eq!(page, "https://me.github.io/deskhand/");
        let got: Vec<(String, String)> = url::form_urlencoded::parse(frag.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(got[0], ("hub".into(), "wss://hub.example.com:8443/".into()));
        assert_eq!(got[1], ("agent".into(), "desk".into()));
        assert_eq!(got[2], ("device".into(), secret));
        assert!(super::qr(&link).is_some());
        assert!(super::hub_url("ws://hub.example.com:8080").is_err());
        assert!(super::hub_url("nats://hub.example.com:4222").is_err());
        assert!(super::hub_url("ws://127.0.0.1:8080").is_ok());
    }

    #[test]
    fn the_pairing_key_fits_a_terminal_qr_code() {
        let secret = format!("dh1.dev-0123456789ab.{}", "A".repeat(43));
        let code = super::qr(&secret).unwrap();
        let lines: Vec<&str> = code.lines().collect();
        // Version 4 at most (33 modules + 8 quiet): under 42 columns, 21 lines.
        let width = lines[0].chars().count();
        assert!(width <= 41 && lines.len() <= 21, "{width}x{}", lines.len());
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert!(
            code.contains('\u{2580}') || code.contains('\u{2584}') || code.contains('\u{2588}')
        );
    }
}

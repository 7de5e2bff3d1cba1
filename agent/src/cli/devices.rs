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
pub fn pair(args: PairArgs, workspace: &Path) -> anyhow::Result<()> {
    let (device, secret) = Devices::new(workspace).pair(&args.name)?;
    crate::store::Store::open(workspace)?.audit().record(
        "device.paired",
        None,
        serde_json::json!({"device": device.id, "name": device.name, "public_key": device.public_key}),
    );
    outln!("Paired {} ({}).", device.name, device.id)?;
    outln!()?;
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
    Ok(())
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

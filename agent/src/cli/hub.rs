//! `deskhand hub key`: this desktop's key for a NATS hub (docs/hub.md), and the line the hub's
//! `accounts.conf` needs for it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::outln;

/// `deskhand hub`.
#[derive(Debug, Args)]
pub struct HubArgs {
    #[command(subcommand)]
    command: HubCommand,
}

#[derive(Debug, Subcommand)]
enum HubCommand {
    /// Make this desktop's hub key (an nkey seed file only you may read), or show the one there
    /// is, with the hub's users entry and the config lines that use it.
    Key {
        /// Where the seed file goes (default: next to the user config,
        /// ~/.config/deskhand/hub.nk).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Run `deskhand hub`.
pub fn run(args: HubArgs) -> anyhow::Result<()> {
    match args.command {
        HubCommand::Key { out } => {
            let path = match out {
                Some(p) => p,
                None => crate::config::Config::user_path()
                    .and_then(|p| p.parent().map(|d| d.join("hub.nk")))
                    .context("no home folder to keep the key in; give --out FILE")?,
            };
            let (key, made) = key_at(&path)?;
            outln!(
                "{} {} (only you may read it; it never leaves this machine)",
                if made { "Made" } else { "Using" },
                path.display()
            )?;
            outln!()?;
            outln!("On the hub, add this desktop to your account's users in accounts.conf:")?;
            outln!()?;
            outln!("  {}", crate::hub::users::desktop_user(&key.public_key()))?;
            outln!()?;
            outln!("In config.toml here (or the leaf's config, docs/hub/leaf.conf):")?;
            outln!()?;
            outln!("  [agent]\n  queue = \"tls://hub.example.com:4222\"\n  name = \"desk\"")?;
            outln!("  [nats]\n  nkey_file = {:?}", path.display().to_string())?;
            Ok(())
        }
    }
}

/// The key in `path`, made there (owner-only) when there is none: the key and whether it was
/// made now.
fn key_at(path: &Path) -> anyhow::Result<(nkeys::KeyPair, bool)> {
    if path.exists() {
        let seed =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| {
            anyhow::anyhow!(
                "{} is not an nkey seed ({e}); move it away to make a new key",
                path.display()
            )
        })?;
        return Ok((key, false));
    }
    let key = nkeys::KeyPair::new_user();
    let seed = key
        .seed()
        .map_err(|e| anyhow::anyhow!("cannot write the new key: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(
        &mut opts
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?,
        format!("{seed}\n").as_bytes(),
    )?;
    Ok((key, true))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_made_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/hub.nk");
        let (a, made) = super::key_at(&path).unwrap();
        assert!(made);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, made) = super::key_at(&path).unwrap();
        assert!(!made);
        assert_eq!(a.public_key(), b.public_key());
        assert!(a.public_key().starts_with('U'));
        std::fs::write(&path, "not a seed").unwrap();
        let e = super::key_at(&path).err().unwrap().to_string();
        assert!(e.contains("not an nkey seed"), "{e}");
    }
}

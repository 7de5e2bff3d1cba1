//! `deskhand extension install`: write the unpacked extension (with the shared in-page script) into
//! the workspace, a small launcher for the native host, and the host manifest into the browser's
//! per-user `NativeMessagingHosts` folder, allowing only the Deskhand extension's id.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{extension_id, HOST_NAME};

/// Which browser to install for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrowserKind {
    /// Google Chrome (`~/.config/google-chrome`).
    Chrome,
    /// Chromium (`~/.config/chromium`).
    Chromium,
}

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The browser whose per-user folder gets the host manifest.
    pub browser: BrowserKind,
    /// A browser started with `--user-data-dir` looks there instead.
    pub user_data_dir: Option<PathBuf>,
    /// Sites granted up front (`http://127.0.0.1`), as if allowed in the popup; normally none.
    pub allow_origins: Vec<String>,
    /// The `deskhand` executable the host launcher runs.
    pub exe: PathBuf,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Installed {
    /// The folder to load unpacked (chrome://extensions → Load unpacked).
    pub extension_dir: PathBuf,
    /// The host manifest.
    pub host_manifest: PathBuf,
    /// The launcher Chrome starts.
    pub host_launcher: PathBuf,
    /// The extension's id.
    pub id: String,
}

/// Install for a workspace.
pub fn install(workspace: &Path, opts: &InstallOptions) -> io::Result<Installed> {
    let workspace = std::path::absolute(workspace)?;
    let private = workspace.join(".deskhand");
    let dir = private.join("extension");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for file in super::files() {
        if file.path().file_name().is_some_and(|n| n == "README.md") {
            continue;
        }
        let to = dir.join(file.path());
        std::fs::create_dir_all(to.parent().expect("inside the folder"))?;
        std::fs::write(&to, file.contents())?;
    }
    // The one in-page script, byte for byte what the CDP backend evaluates.
    std::fs::create_dir_all(dir.join("content"))?;
    std::fs::write(dir.join("content/deskhand.js"), deskhand_browser::SCRIPT)?;
    let mut manifest = super::manifest();
    if !opts.allow_origins.is_empty() {
        let patterns = opts
            .allow_origins
            .iter()
            .map(|o| match_pattern(o))
            .collect::<Result<Vec<_>, _>>()?;
        manifest["host_permissions"] = json!(patterns);
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;

    let launcher = private.join("native-host.sh");
    let quote = |p: &Path| {
        shlex::try_quote(&p.to_string_lossy())
            .map(|q| q.into_owned())
            .map_err(io::Error::other)
    };
    let script = format!(
        "#!/bin/sh\n# Started by the browser for the Deskhand extension; relays to the agent.\nexec {} --workspace {} native-host \"$@\"\n",
        quote(&opts.exe)?,
        quote(&workspace)?
    );
    std::fs::write(&launcher, script)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755))?;

    let id = extension_id();
    let hosts = host_dir(opts)?;
    std::fs::create_dir_all(&hosts)?;
    let host_manifest = hosts.join(format!("{HOST_NAME}.json"));
    let host = json!({
        "name": HOST_NAME,
        "description": "Deskhand agent: runs your jobs in this browser's tabs",
        "path": launcher,
        "type": "stdio",
        "allowed_origins": [format!("chrome-extension://{id}/")],
    });
    std::fs::write(&host_manifest, serde_json::to_vec_pretty(&host)?)?;
    Ok(Installed {
        extension_dir: dir,
        host_manifest,
        host_launcher: launcher,
        id,
    })
}

/// Where the browser looks for native host manifests.
fn host_dir(opts: &InstallOptions) -> io::Result<PathBuf> {
    if let Some(d) = &opts.user_data_dir {
        return Ok(std::path::absolute(d)?.join("NativeMessagingHosts"));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "neither XDG_CONFIG_HOME nor HOME is set; pass --user-data-dir",
            )
        })?;
    Ok(config
        .join(match opts.browser {
            BrowserKind::Chrome => "google-chrome",
            BrowserKind::Chromium => "chromium",
        })
        .join("NativeMessagingHosts"))
}

/// `http://127.0.0.1:8080` → `http://127.0.0.1/*` (Chrome's match patterns ignore ports).
fn match_pattern(origin: &str) -> io::Result<String> {
    let u = url::Url::parse(origin).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--allow-origin {origin:?}: {e}; write e.g. https://example.com"),
        )
    })?;
    match (u.scheme(), u.host_str()) {
        ("http" | "https", Some(host)) => Ok(format!("{}://{host}/*", u.scheme())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--allow-origin {origin:?} must be an http(s) origin"),
        )),
    }
}

/// The installed extension's manifest, if any.
pub fn installed_manifest(workspace: &Path) -> Option<Value> {
    let text = std::fs::read(workspace.join(".deskhand/extension/manifest.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_writes_the_extension_the_launcher_and_a_strict_host_manifest() {
        let ws = tempfile::tempdir().unwrap();
        let udd = tempfile::tempdir().unwrap();
        let got = install(
            ws.path(),
            &InstallOptions {
                browser: BrowserKind::Chromium,
                user_data_dir: Some(udd.path().to_path_buf()),
                allow_origins: vec!["http://127.0.0.1:9999".into()],
                exe: PathBuf::from("/usr/local/bin/desk hand"),
            },
        )
        .unwrap();
        // One source of truth: the content script is the engine's own file, byte for byte.
        assert_eq!(
            std::fs::read(got.extension_dir.join("content/deskhand.js")).unwrap(),
            deskhand_browser::SCRIPT.as_bytes()
        );
        let m = installed_manifest(ws.path()).unwrap();
        assert_eq!(m["host_permissions"], json!(["http://127.0.0.1/*"]));
        assert_eq!(m["key"], super::super::manifest()["key"]);
        let host: Value =
            serde_json::from_slice(&std::fs::read(&got.host_manifest).unwrap()).unwrap();
        assert_eq!(
            host["allowed_origins"],
            json!([format!("chrome-extension://{}/", extension_id())])
        );
        assert!(got
            .host_manifest
            .starts_with(udd.path().join("NativeMessagingHosts")));
        let launcher = std::fs::read_to_string(&got.host_launcher).unwrap();
        assert!(
            launcher.contains("'/usr/local/bin/desk hand'"),
            "{launcher}"
        );
        assert!(match_pattern("ftp://x").is_err());
    }
}

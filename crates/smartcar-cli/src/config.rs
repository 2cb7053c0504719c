//! Settings: flags, then `SMARTCAR_*` variables, then the profile's table of the config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::exit::CliError;

/// The settings the tool reads, by environment name; the config file uses the same names in
/// lower case without `SMARTCAR_`.
pub const SETTINGS: &[&str] = &[
    "SMARTCAR_CLIENT_ID",
    "SMARTCAR_CLIENT_SECRET",
    "SMARTCAR_REDIRECT_URI",
    "SMARTCAR_V3_REDIRECT_URI",
    "SMARTCAR_MANAGEMENT_TOKEN",
    "SMARTCAR_MODE",
    "SMARTCAR_ORIGIN",
    "SMARTCAR_API_ORIGIN",
    "SMARTCAR_AUTH_ORIGIN",
    "SMARTCAR_IAM_ORIGIN",
    "SMARTCAR_CONNECT_ORIGIN",
    "SMARTCAR_MANAGEMENT_API_ORIGIN",
    "SMARTCAR_VEHICLE_API_V3_ORIGIN",
    "SMARTCAR_API_V3_ORIGIN",
    "SMARTCAR_VEHICLE_API_ORIGIN",
    "SMARTCAR_MANAGEMENT_API_V3_ORIGIN",
    "SMARTCAR_COMPATIBILITY_API_ORIGIN",
];

/// Settings whose values are secrets: never printed, only described.
pub const SECRETS: &[&str] = &["SMARTCAR_CLIENT_SECRET", "SMARTCAR_MANAGEMENT_TOKEN"];

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "environment",
            Source::File => "config file",
        }
    }
}

/// The resolved settings of one profile.
#[derive(Clone)]
pub struct Settings {
    pub profile: String,
    pub dir: PathBuf,
    pub config_file: PathBuf,
    values: BTreeMap<&'static str, (String, Source)>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<_, _> = self
            .values
            .iter()
            .map(|(k, (v, s))| {
                let v = if SECRETS.contains(k) {
                    "[redacted]".to_owned()
                } else {
                    v.clone()
                };
                (*k, (v, *s))
            })
            .collect();
        f.debug_struct("Settings")
            .field("profile", &self.profile)
            .field("config_file", &self.config_file)
            .field("values", &shown)
            .finish()
    }
}

/// The config directory: `SMARTCAR_CONFIG_DIR`, else `$XDG_CONFIG_HOME/smartcar`, else
/// `~/.config/smartcar` (`%APPDATA%\smartcar` on Windows).
pub fn config_dir() -> Result<PathBuf, CliError> {
    let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = nonempty("SMARTCAR_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if cfg!(windows) {
        if let Some(dir) = nonempty("APPDATA") {
            return Ok(PathBuf::from(dir).join("smartcar"));
        }
    } else if let Some(dir) = nonempty("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("smartcar"));
    } else if let Some(home) = nonempty("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("smartcar"));
    }
    Err(CliError::config(
        "no config directory: neither SMARTCAR_CONFIG_DIR, XDG_CONFIG_HOME nor HOME is set",
    )
    .hint("set SMARTCAR_CONFIG_DIR to a directory this user can write"))
}

/// Creates the config directory, readable by this user only (it holds tokens).
pub fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::config(format!("cannot create {}: {e}", dir.display()))
            .hint("set SMARTCAR_CONFIG_DIR to a directory this user can write")
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

impl Settings {
    /// Reads the settings of `profile`: flags (`flags`), then the environment, then the file.
    pub fn load(
        profile: &str,
        config: Option<&Path>,
        flags: &[(&'static str, Option<String>)],
    ) -> Result<Settings, CliError> {
        let dir = config_dir()?;
        let config_file = config
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("config.toml"));
        let file = read_profile(&config_file, profile, config.is_some())?;
        let mut values = BTreeMap::new();
        for name in SETTINGS {
            let flag = flags
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.clone())
                .filter(|v| !v.trim().is_empty());
            let env = std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let key = file_key(name);
            let from_file = file.get(&key).cloned();
            let value = flag
                .map(|v| (v, Source::Flag))
                .or(env.map(|v| (v, Source::Env)))
                .or(from_file.map(|v| (v, Source::File)));
            if let Some(v) = value {
                values.insert(*name, v);
            }
        }
        Ok(Settings {
            profile: profile.to_owned(),
            dir,
            config_file,
            values,
        })
    }

    /// A setting's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(v, _)| v.as_str())
    }

    /// Where a setting came from.
    pub fn source(&self, name: &str) -> Option<Source> {
        self.values.get(name).map(|(_, s)| *s)
    }

    /// A setting that must be there.
    pub fn require(&self, name: &str, why: &str) -> Result<&str, CliError> {
        self.get(name).ok_or_else(|| {
            CliError::config(format!("{name} is not set ({why})")).hint(format!(
                "export {name}=…, or add `{} = \"…\"` under [{}] in {}",
                file_key(name),
                self.profile,
                self.config_file.display()
            ))
        })
    }

    /// The SDK client: the settings as the SDK's `SMARTCAR_*` lookup, `SMARTCAR_ORIGIN` for
    /// every host, the Connect mode.
    pub fn client(&self) -> Result<smartcar::Client, CliError> {
        self.require("SMARTCAR_CLIENT_ID", "the application's client id")?;
        self.require("SMARTCAR_CLIENT_SECRET", "the application's client secret")?;
        // SMARTCAR_ORIGIN is every host's default; a host's own variable still wins over it.
        let everywhere = self.get("SMARTCAR_ORIGIN");
        let builder = smartcar::ClientBuilder::from_lookup(|name| {
            self.get(name)
                .or_else(|| everywhere.filter(|_| name.ends_with("_ORIGIN")))
                .map(str::to_owned)
        })?;
        Ok(builder.build()?)
    }

    /// The token and state file.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.sqlite")
    }
}

/// `SMARTCAR_CLIENT_ID` → `client_id`.
pub fn file_key(name: &str) -> String {
    name.trim_start_matches("SMARTCAR_").to_ascii_lowercase()
}

/// The profile's table of the config file (empty when the default file does not exist).
fn read_profile(
    path: &Path,
    profile: &str,
    explicit: bool,
) -> Result<BTreeMap<String, String>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(BTreeMap::new());
        }
        Err(e) => {
            return Err(CliError::config(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )));
        }
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        // toml's message quotes the offending line, which may hold a secret: keep the position.
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        CliError::config(format!(
            "the config file {} is not valid TOML{at}",
            path.display()
        ))
    })?;
    let Some(section) = table.get(profile) else {
        return Ok(BTreeMap::new());
    };
    let Some(section) = section.as_table() else {
        return Err(CliError::config(format!(
            "[{profile}] in {} is not a table",
            path.display()
        )));
    };
    let known: Vec<String> = SETTINGS.iter().map(|n| file_key(n)).collect();
    let mut out = BTreeMap::new();
    for (key, value) in section {
        if !known.contains(key) {
            return Err(CliError::config(format!(
                "unknown setting `{key}` under [{profile}] in {}",
                path.display()
            ))
            .hint(format!("the settings are: {}", known.join(", "))));
        }
        let Some(value) = value.as_str() else {
            return Err(CliError::config(format!(
                "`{key}` under [{profile}] in {} must be a string",
                path.display()
            )));
        };
        out.insert(key.clone(), value.to_owned());
    }
    Ok(out)
}

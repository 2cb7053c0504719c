//! Are the crates meant for crates.io ready to publish? Read from their manifests and the
//! workspace's (no cargo invocation, so it stays fast; `cargo package` itself is run by hand):
//!
//! - `description`, `license` (inherited from `[workspace.package]`), `rust-version`;
//! - `readme` set and the file present in the crate's directory (crates.io shows it);
//! - `keywords`: 1 to 5, each at most 20 characters of ASCII lower case, digits, `-` or `_`,
//!   starting with a letter or digit (crates.io's rules, lower case by our convention);
//! - `categories`: 1 to 5 slugs from crates.io's list (`CATEGORIES`; an unknown slug makes
//!   `cargo publish` fail);
//! - `[package.metadata.docs.rs]` present, naming features that exist, and never a hidden one
//!   (`fuzzing`: no stability promise);
//! - no placeholder (`OWNER`) in `repository`, `homepage` or `documentation`, the package's or
//!   the workspace's;
//! - `publish` not `false` (nor `[]`);
//! - every path dependency the published crates build with also has a version (crates.io
//!   refuses a dependency without one).
//!
//! `smartcar-cli` is checked once its `Cargo.toml` exists. The checks also run on a synthetic
//! manifest, to show that each of them can fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// The publishable crates: directory (relative to the workspace root), package name, and
/// whether the crate must already exist.
const PUBLISHED: [(&str, &str, bool); 4] = [
    ("crates/smartcar-api", "smartcar-api", true),
    ("crates/smartcar", "smartcar-sdk", true),
    ("crates/smartcar-sim", "smartcar-sim", true),
    ("crates/smartcar-cli", "smartcar-cli", false),
];

/// Features with no stability promise: docs.rs must not document them.
const HIDDEN_FEATURES: [&str; 1] = ["fuzzing"];

/// Valid crates.io category slugs (crates.io's `src/boot/categories.toml`).
const CATEGORIES: &[&str] = &[
    "algorithms",
    "api-bindings",
    "asynchronous",
    "authentication",
    "caching",
    "command-line-interface",
    "command-line-utilities",
    "compression",
    "computer-vision",
    "concurrency",
    "config",
    "cryptography",
    "cryptography::cryptocurrencies",
    "data-structures",
    "database",
    "database-implementations",
    "date-and-time",
    "development-tools",
    "development-tools::build-utils",
    "development-tools::cargo-plugins",
    "development-tools::debugging",
    "development-tools::ffi",
    "development-tools::procedural-macro-helpers",
    "development-tools::profiling",
    "development-tools::testing",
    "email",
    "embedded",
    "emulators",
    "encoding",
    "external-ffi-bindings",
    "filesystem",
    "game-development",
    "game-engines",
    "games",
    "graphics",
    "gui",
    "hardware-support",
    "internationalization",
    "localization",
    "mathematics",
    "memory-management",
    "multimedia",
    "multimedia::audio",
    "multimedia::encoding",
    "multimedia::images",
    "multimedia::video",
    "network-programming",
    "no-std",
    "os",
    "os::linux-apis",
    "os::macos-apis",
    "os::unix-apis",
    "os::windows-apis",
    "parser-implementations",
    "parsing",
    "rendering",
    "rendering::data-formats",
    "rendering::engine",
    "rendering::graphics-api",
    "rust-patterns",
    "science",
    "science::robotics",
    "simulation",
    "template-engine",
    "text-editors",
    "text-processing",
    "value-formatting",
    "visualization",
    "wasm",
    "web-programming",
    "web-programming::http-client",
    "web-programming::http-server",
    "web-programming::websocket",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_manifest(path: &Path) -> Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse::<Table>()
        .unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()))
}

/// `table.a.b.c`, if every step is a table.
fn get<'a>(table: &'a Table, path: &[&str]) -> Option<&'a Value> {
    let (last, steps) = path.split_last()?;
    let mut table = table;
    for step in steps {
        table = table.get(*step)?.as_table()?;
    }
    table.get(*last)
}

/// A TOML value as it would be written (strings quoted), for messages.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        Value::Integer(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Table(_) => "a table".to_owned(),
    }
}

/// `{ workspace = true }`
fn is_inherited(value: &Value) -> bool {
    value
        .as_table()
        .and_then(|t| t.get("workspace"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// A `[package]` field with `field.workspace = true` resolved from `[workspace.package]`;
/// `Err` when it says so but the workspace has no such field.
fn field<'a>(
    workspace: &'a Table,
    package: &'a Table,
    key: &str,
) -> Result<Option<&'a Value>, String> {
    match package.get(key) {
        Some(value) if is_inherited(value) => get(workspace, &["workspace", "package", key])
            .map(Some)
            .ok_or_else(|| {
                format!("`{key}.workspace = true` but [workspace.package] has no `{key}`")
            }),
        other => Ok(other),
    }
}

/// What the workspace manifest itself gets wrong for publishing.
fn workspace_problems(workspace: &Table) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["repository", "homepage", "documentation"] {
        if let Some(text) = get(workspace, &["workspace", "package", key]).and_then(Value::as_str)
            && text.contains("OWNER")
        {
            problems.push(format!(
                "workspace: [workspace.package] {key} is a placeholder: {text:?}"
            ));
        }
    }
    if get(workspace, &["workspace", "package", "license"])
        .and_then(Value::as_str)
        .is_none_or(|l| l.trim().is_empty())
    {
        problems.push("workspace: [workspace.package] has no license".to_owned());
    }
    let deps = get(workspace, &["workspace", "dependencies"]).and_then(Value::as_table);
    for (name, spec) in deps.into_iter().flatten() {
        if let Some(spec) = spec.as_table()
            && spec.contains_key("path")
            && !spec.contains_key("version")
        {
            problems.push(format!(
                "workspace: [workspace.dependencies] {name} has a path but no version \
                 (crates.io refuses it)"
            ));
        }
    }
    problems
}

/// What one crate's manifest gets wrong for publishing; `dir` is the crate's directory.
fn crate_problems(workspace: &Table, manifest: &Table, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(package) = manifest.get("package").and_then(Value::as_table) else {
        return vec![format!("{}: no [package]", dir.display())];
    };
    let name = package
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_owned();
    let mut problem = |text: String| problems.push(format!("{name}: {text}"));
    // A field, resolved from the workspace; a broken inheritance is reported.
    let resolve = |key: &str, problem: &mut dyn FnMut(String)| match field(workspace, package, key)
    {
        Ok(value) => value,
        Err(e) => {
            problem(e);
            None
        }
    };

    // Description, license, MSRV.
    match resolve("description", &mut problem).map(Value::as_str) {
        Some(Some(text)) if !text.trim().is_empty() => {}
        _ => problem("no description".to_owned()),
    }
    match package.get("license") {
        Some(value) if is_inherited(value) => {
            if field(workspace, package, "license")
                .ok()
                .flatten()
                .and_then(Value::as_str)
                .is_none_or(|l| l.trim().is_empty())
            {
                problem("license.workspace = true but the workspace has no license".to_owned());
            }
        }
        _ => problem("license is not `license.workspace = true`".to_owned()),
    }
    if resolve("rust-version", &mut problem).is_none() {
        problem("no rust-version (the README states the MSRV)".to_owned());
    }

    // README.
    match resolve("readme", &mut problem) {
        Some(Value::String(readme)) => {
            if !dir.join(readme).is_file() {
                problem(format!(
                    "readme {readme:?} is not a file in {}",
                    dir.display()
                ));
            }
        }
        Some(other) => problem(format!("readme is {}, not a file name", show(other))),
        None => problem("no readme".to_owned()),
    }

    // Keywords.
    match resolve("keywords", &mut problem) {
        Some(Value::Array(keywords)) => {
            if !(1..=5).contains(&keywords.len()) {
                problem(format!(
                    "{} keywords (crates.io takes 1 to 5)",
                    keywords.len()
                ));
            }
            let mut seen = BTreeSet::new();
            for keyword in keywords {
                let Some(keyword) = keyword.as_str() else {
                    problem(format!("keyword {} is not a string", show(keyword)));
                    continue;
                };
                let valid_chars = keyword
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
                let starts_well = keyword
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric());
                if keyword.len() > 20 || !valid_chars || !starts_well {
                    problem(format!(
                        "keyword {keyword:?}: at most 20 characters of a-z, 0-9, `-`, `_`, \
                         starting with a letter or digit"
                    ));
                }
                if !seen.insert(keyword) {
                    problem(format!("keyword {keyword:?} twice"));
                }
            }
        }
        Some(other) => problem(format!("keywords is {}, not a list", show(other))),
        None => problem("no keywords".to_owned()),
    }

    // Categories.
    match resolve("categories", &mut problem) {
        Some(Value::Array(categories)) => {
            if !(1..=5).contains(&categories.len()) {
                problem(format!(
                    "{} categories (crates.io takes 1 to 5)",
                    categories.len()
                ));
            }
            for category in categories {
                match category.as_str() {
                    Some(slug) if CATEGORIES.contains(&slug) => {}
                    _ => problem(format!(
                        "category {} is not a crates.io slug",
                        show(category)
                    )),
                }
            }
        }
        Some(other) => problem(format!("categories is {}, not a list", show(other))),
        None => problem("no categories".to_owned()),
    }

    // docs.rs.
    let features: BTreeSet<&str> = manifest
        .get("features")
        .and_then(Value::as_table)
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    match get(package, &["metadata", "docs", "rs"]).and_then(Value::as_table) {
        None => problem("no [package.metadata.docs.rs]".to_owned()),
        Some(docs) => {
            let all = docs.get("all-features").and_then(Value::as_bool) == Some(true);
            let listed: Vec<&str> = docs
                .get("features")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if docs.is_empty() {
                problem("[package.metadata.docs.rs] is empty".to_owned());
            }
            for feature in &listed {
                if !features.contains(feature) {
                    problem(format!(
                        "docs.rs feature {feature:?} is not a feature of the crate"
                    ));
                }
            }
            for hidden in HIDDEN_FEATURES {
                if features.contains(hidden) && (all || listed.contains(&hidden)) {
                    problem(format!(
                        "docs.rs documents the hidden feature {hidden:?} (list the others \
                         instead of all-features)"
                    ));
                }
            }
        }
    }

    // Links.
    for key in ["repository", "homepage", "documentation"] {
        if let Some(value) = resolve(key, &mut problem) {
            match value.as_str() {
                Some(text) if text.contains("OWNER") => {
                    problem(format!("{key} is a placeholder: {text:?}"))
                }
                Some(text) if !text.starts_with("https://") => {
                    problem(format!("{key} is not an https URL: {text:?}"))
                }
                Some(_) => {}
                None => problem(format!("{key} is {}, not a URL", show(value))),
            }
        }
    }

    // Publishable at all.
    match package.get("publish") {
        None | Some(Value::Boolean(true)) => {}
        Some(Value::Array(registries)) if !registries.is_empty() => {}
        Some(other) => problem(format!("publish = {}", show(other))),
    }

    // Path dependencies need a version (dev-dependencies without one are dropped by cargo).
    for section in ["dependencies", "build-dependencies"] {
        for (dep, spec) in manifest
            .get(section)
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            let Some(spec) = spec.as_table() else {
                continue;
            };
            if spec.contains_key("path") && !spec.contains_key("version") {
                problem(format!("[{section}] {dep} has a path but no version"));
            }
            if spec.get("workspace").and_then(Value::as_bool) == Some(true)
                && get(workspace, &["workspace", "dependencies", dep]).is_none()
            {
                problem(format!(
                    "[{section}] {dep}.workspace = true but the workspace lacks it"
                ));
            }
        }
    }

    problems
}

#[test]
fn publishable_crates_are_ready_for_crates_io() {
    let root = workspace_root();
    let workspace = read_manifest(&root.join("Cargo.toml"));
    let mut problems = workspace_problems(&workspace);
    let mut checked = Vec::new();
    for (dir, name, required) in PUBLISHED {
        let dir = root.join(dir);
        let path = dir.join("Cargo.toml");
        if !path.is_file() {
            assert!(!required, "{} is missing", path.display());
            continue;
        }
        let manifest = read_manifest(&path);
        let actual = get(&manifest, &["package", "name"]).and_then(Value::as_str);
        assert_eq!(actual, Some(name), "the package in {}", path.display());
        problems.extend(crate_problems(&workspace, &manifest, &dir));
        checked.push(name);
    }
    assert!(checked.len() >= 3, "checked only {checked:?}");
    assert!(
        problems.is_empty(),
        "not ready to publish:\n{}",
        problems.join("\n")
    );
}

/// The category list is well formed (lower case slugs, `::` between levels, no duplicate).
#[test]
fn category_list_is_well_formed() {
    let mut seen = BTreeSet::new();
    for slug in CATEGORIES {
        assert!(seen.insert(slug), "{slug} twice");
        assert!(
            slug.split("::").all(|part| !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')),
            "{slug}"
        );
    }
}

/// Every check reports a manifest that breaks it: the manifests as they were before this test
/// (a placeholder `repository` inherited from the workspace) among them.
#[test]
fn checks_report_a_manifest_that_is_not_ready() {
    let workspace: Table = r#"
        [workspace.package]
        version = "0.1.0"
        rust-version = "1.88"
        repository = "https://github.com/OWNER/smartcar-rs" # placeholder

        [workspace.dependencies]
        smartcar-api = { path = "crates/smartcar-api" }
    "#
    .parse()
    .unwrap();
    let manifest: Table = r#"
        [package]
        name = "bad"
        version.workspace = true
        license = "MIT"
        repository.workspace = true
        homepage.workspace = true
        readme = "NO-SUCH-README.md"
        keywords = ["smartcar", "Vehicle", "a-keyword-longer-than-20", "-dash", "x", "y"]
        categories = ["automotive"]
        publish = false

        [package.metadata.docs.rs]
        all-features = true
        features = ["nope"]

        [features]
        fuzzing = []

        [dependencies]
        local = { path = "../local" }
        missing = { workspace = true }
    "#
    .parse()
    .unwrap();
    let mut problems = workspace_problems(&workspace);
    problems.extend(crate_problems(
        &workspace,
        &manifest,
        &workspace_root().join("tests"),
    ));
    let text = problems.join("\n");
    for expected in [
        "workspace: [workspace.package] repository is a placeholder",
        "workspace: [workspace.package] has no license",
        "workspace: [workspace.dependencies] smartcar-api has a path but no version",
        "bad: no description",
        "bad: license is not `license.workspace = true`",
        "bad: `homepage.workspace = true` but [workspace.package] has no `homepage`",
        "bad: readme \"NO-SUCH-README.md\" is not a file",
        "bad: 6 keywords",
        "bad: keyword \"Vehicle\"",
        "bad: keyword \"a-keyword-longer-than-20\"",
        "bad: keyword \"-dash\"",
        "bad: category \"automotive\" is not a crates.io slug",
        "bad: docs.rs feature \"nope\" is not a feature of the crate",
        "bad: docs.rs documents the hidden feature \"fuzzing\"",
        "bad: repository is a placeholder",
        "bad: publish = false",
        "bad: [dependencies] local has a path but no version",
        "bad: [dependencies] missing.workspace = true but the workspace lacks it",
    ] {
        assert!(
            text.contains(expected),
            "expected {expected:?} among:\n{text}"
        );
    }

    // A manifest with nothing at all: every required field is reported missing.
    let empty: Table = "[package]\nname = \"empty\"\n".parse().unwrap();
    let text = crate_problems(&Table::new(), &empty, &workspace_root()).join("\n");
    for expected in [
        "empty: no description",
        "empty: no rust-version",
        "empty: no readme",
        "empty: no keywords",
        "empty: no categories",
        "empty: no [package.metadata.docs.rs]",
    ] {
        assert!(
            text.contains(expected),
            "expected {expected:?} among:\n{text}"
        );
    }
}

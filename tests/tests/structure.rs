//! Structural checks of the SDK (`crates/smartcar/src`) and the simulator
//! (`crates/smartcar-sim/src`), read as source text (see `smartcar_tests::rust_source`):
//!
//! - **No API path literal.** Paths, hosts and permissions come from the generated operation
//!   table `smartcar_api::ops`; a string literal in code (not in a comment or a doc example)
//!   that spells an API path is reported as `file:line: "literal"` with the `ops` constant to
//!   use. What counts as an API path is derived from `ops::ALL`: a literal containing the first
//!   segment of some operation's path (`/v2.0`, `/v3`, `/oauth`, …), or ending with the part of
//!   an operation's path after `{vehicle_id}` (`"/odometer"`, `"tires/pressure"`,
//!   `"{base}/commands/charge/start"`).
//! - **No import circle** between the top-level modules of either crate (a `src/x.rs` file or
//!   a `src/x/` directory; `lib.rs` and `main.rs` are the root and may reference everything).
//!   A module depends on another when its code names it through `crate::y…`, a
//!   `crate::{y, …}` group, `super::…` reaching the crate root, or an item the root re-exports
//!   from `y` (`crate::Error` → `error`). Every elementary cycle is reported, with the line
//!   that makes each edge.
//!
//! Items under `#[cfg(test)]` are not read: unit tests may spell paths and reach into other
//! modules as independent checks. A literal that must stay (a deliberate independent check) is
//! excused by a comment `// path-literal: <why>` on its line or the line above. Generated code (a file whose name contains `generated`) is
//! skipped. Each check is also run on a small synthetic crate, to show it can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use smartcar_api::op::Operation;
use smartcar_api::ops;
use smartcar_tests::rust_source::{Literal, Source};

/// The two crates whose `src/` is checked, relative to the workspace root.
const CRATES: [&str; 2] = ["crates/smartcar/src", "crates/smartcar-sim/src"];

/// One source file: its path relative to the crate's `src/` and its text.
struct File {
    rel: PathBuf,
    text: String,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir` except generated code, sorted by path.
fn read_crate(src: &Path) -> Vec<File> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("generated"))
        })
        .map(|p| File {
            text: std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())),
            rel: p.strip_prefix(src).expect("under src").to_path_buf(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// API path literals.

/// A path split into segments; `{…}` placeholders (template parameters and `format!`
/// arguments) become `None`.
fn segments(path: &str) -> Vec<Option<&str>> {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                None
            } else {
                Some(s)
            }
        })
        .collect()
}

/// `ours` (a literal's segments) ends with `tail` (a template's), placeholders in the template
/// matching any non-empty segment.
fn ends_with(ours: &[Option<&str>], tail: &[Option<&str>]) -> bool {
    ours.len() >= tail.len()
        && ours[ours.len() - tail.len()..]
            .iter()
            .zip(tail)
            .all(|(o, t)| match (o, t) {
                (_, None) => *o != Some(""),
                (Some(o), Some(t)) => o == t,
                (None, Some(_)) => false,
            })
}

/// What the path-literal check looks for, derived from the operation table.
struct PathPatterns {
    /// First segments of every operation's path (`/v2.0`, `/oauth2`, …).
    prefixes: BTreeSet<String>,
    /// For each operation with a `{vehicle_id}`, the segments after it, non-empty.
    tails: Vec<(&'static Operation, Vec<Option<&'static str>>)>,
    operations: &'static [Operation],
}

impl PathPatterns {
    fn new(operations: &'static [Operation]) -> Self {
        let prefixes = operations
            .iter()
            .filter_map(|op| op.path.split('/').nth(1))
            .map(|first| format!("/{first}"))
            .collect();
        let tails = operations
            .iter()
            .filter_map(|op| {
                let (_, tail) = op.path.split_once("{vehicle_id}")?;
                let tail = tail.strip_prefix('/')?;
                Some((op, segments(tail)))
            })
            .filter(|(_, t)| !t.is_empty())
            .collect();
        PathPatterns {
            prefixes,
            tails,
            operations,
        }
    }

    /// The literal without its query, when it spells an API path.
    fn is_api_path(&self, literal: &str) -> bool {
        let text = literal.split(['?', '#']).next().unwrap_or("");
        let prefixed = self.prefixes.iter().any(|p| {
            text.match_indices(p.as_str())
                .any(|(k, _)| matches!(text[k + p.len()..].chars().next(), None | Some('/' | '{')))
        });
        prefixed || (text.contains('/') && !self.tail_matches(text).is_empty())
    }

    fn tail_matches(&self, text: &str) -> Vec<&'static Operation> {
        let ours = segments(text);
        self.tails
            .iter()
            .filter(|(_, tail)| ends_with(&ours, tail))
            .map(|(op, _)| *op)
            .collect()
    }

    /// The `ops` constants a literal probably stands for.
    fn advice(&self, literal: &str) -> String {
        // The path may sit in a message (`"`POST /v3/…` failed"`): take the word that holds it.
        let text = literal
            .split(|c: char| c.is_whitespace() || "`'\"(),;".contains(c))
            .find(|word| word.contains('/') && self.is_api_path(word))
            .unwrap_or(literal);
        let text = text.split(['?', '#']).next().unwrap_or("");
        let text = text.trim_end_matches('/');
        let ours = segments(text);
        // A whole template (after any origin) first, then the tails.
        let mut found: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|op| {
                // Without the template's leading empty segment, so that an origin or a
                // `{base}` may come before it.
                let template = segments(op.path);
                ends_with(&ours, &template[1.min(template.len())..])
            })
            .collect();
        if found.is_empty() {
            found = self.tail_matches(text);
        }
        if found.is_empty() {
            // The start of a path (`/v3/vehicles/{id}/commands/`): the operations under it;
            // a prefix only (`/v2.0`, a base URL): any operation under it.
            let start = self
                .prefixes
                .iter()
                .filter_map(|p| text.find(p.as_str()))
                .min()
                .unwrap_or(0);
            let ours = segments(&text[start..]);
            found = self
                .operations
                .iter()
                .filter(|op| {
                    let template = segments(op.path);
                    template.len() > ours.len()
                        && ours.iter().zip(&template).all(|(o, t)| match (o, t) {
                            (_, None) | (None, _) => true,
                            (Some(o), Some(t)) => o == t,
                        })
                })
                .take(3)
                .collect();
            if !found.is_empty() {
                return format!(
                    "build each operation's path from its `ops` constant (under this one: {})",
                    names(&found)
                );
            }
            found = self
                .operations
                .iter()
                .filter(|op| {
                    op.path
                        .split('/')
                        .nth(1)
                        .is_some_and(|first| text.contains(&format!("/{first}")))
                })
                .take(3)
                .collect();
            if found.is_empty() {
                return "name the operation through an `ops::*` constant (none matches this \
                        path: add the operation to openapi/smartcar.yaml and regenerate first)"
                    .to_string();
            }
            return format!(
                "build the URL from an operation's host and path (e.g. {})",
                names(&found)
            );
        }
        found.sort_by_key(|op| std::cmp::Reverse(op.path.len()));
        format!("use {}", names(&found))
    }
}

fn constant(op: &Operation) -> String {
    format!("ops::{}", op.id.to_uppercase())
}

fn marker(op: &Operation) -> String {
    let camel: String = op
        .id
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    format!("ops::{camel}")
}

fn names(found: &[&Operation]) -> String {
    found
        .iter()
        .take(3)
        .map(|op| {
            format!(
                "`{}` (`{}`, path from `{}::path(..)`)",
                constant(op),
                op,
                marker(op)
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Every API path literal of a crate, as `file:line: "literal" → what to do`.
fn path_literal_hits(root: &str, files: &[File], patterns: &PathPatterns) -> Vec<String> {
    let mut hits = Vec::new();
    for file in files {
        let source = Source::parse(&file.text).without_test_items();
        let lines: Vec<&str> = file.text.lines().collect();
        // `// path-literal: <why>` on the literal's line or the line above excuses it (a
        // deliberate independent check, say); the reason is required.
        let excused = |line: usize| {
            [line.checked_sub(2), Some(line - 1)]
                .into_iter()
                .flatten()
                .filter_map(|i| lines.get(i))
                .any(|l| {
                    l.split_once("// path-literal:")
                        .is_some_and(|(_, why)| !why.trim().is_empty())
                })
        };
        for Literal { line, text, .. } in &source.literals {
            if patterns.is_api_path(text) && !excused(*line) {
                hits.push(format!(
                    "{root}/{}:{line}: \"{text}\" → {}",
                    file.rel.display(),
                    patterns.advice(text)
                ));
            }
        }
    }
    hits
}

#[test]
fn no_api_path_literal_in_sdk_or_simulator() {
    let patterns = PathPatterns::new(ops::ALL);
    let mut hits = Vec::new();
    for root in CRATES {
        let files = read_crate(&workspace().join(root));
        assert!(!files.is_empty(), "no source files under {root}");
        hits.extend(path_literal_hits(root, &files, &patterns));
    }
    assert!(
        hits.is_empty(),
        "{} API path literal(s) outside generated code. Name the operation through \
         `smartcar_api::ops` instead (host, path template and `path(..)` builder, permissions, \
         command/idempotent flags all come with it):\n{}",
        hits.len(),
        hits.join("\n")
    );
}

#[test]
fn the_path_literal_check_can_fail() {
    let patterns = PathPatterns::new(ops::ALL);
    let files = [File {
        rel: "v2.rs".into(),
        text: r#"//! "/v2.0/vehicles/{id}/odometer" in a doc comment is fine.
/// ```
/// let _ = "/v3/vehicles";
/// ```
fn route() -> &'static str {
    "/v2.0/vehicles/{vehicle_id}/odometer" // a hand-typed route
}
fn batch() -> [&'static str; 4] {
    ["/tires/pressure", "tires/pressure", "odometer", "application/json"]
}
fn url(base: &str, id: &str) -> String {
    format!("{base}/v3/vehicles/{id}/commands/charge/start?x=1")
}
fn token() -> &'static str { r"/oauth2/token" }
// path-literal: checks the SDK's own path building independently
const EXCUSED: &str = "/v2.0/user";
const NOT_EXCUSED: &str = "/v2.0/vehicles"; // path-literal:
#[cfg(test)]
mod tests {
    const IN_A_TEST: &str = "/v2.0/user";
}
"#
        .to_string(),
    }];
    let hits = path_literal_hits("demo", &files, &patterns);
    let lines: Vec<&str> = hits
        .iter()
        .map(|h| h.split(" → ").next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "demo/v2.rs:6: \"/v2.0/vehicles/{vehicle_id}/odometer\"",
            "demo/v2.rs:9: \"/tires/pressure\"",
            "demo/v2.rs:9: \"tires/pressure\"",
            "demo/v2.rs:12: \"{base}/v3/vehicles/{id}/commands/charge/start?x=1\"",
            "demo/v2.rs:14: \"/oauth2/token\"",
            "demo/v2.rs:17: \"/v2.0/vehicles\"",
        ],
        "{hits:#?}"
    );
    assert!(hits[0].contains("`ops::GET_ODOMETER`"), "{}", hits[0]);
    assert!(
        hits[0].contains("`ops::GetOdometer::path(..)`"),
        "{}",
        hits[0]
    );
    assert!(hits[1].contains("`ops::GET_TIRE_PRESSURE`"), "{}", hits[1]);
    assert!(hits[3].contains("`ops::START_CHARGE_V3`"), "{}", hits[3]);
    assert!(
        hits[4].contains("`ops::REQUEST_APPLICATION_TOKEN`"),
        "{}",
        hits[4]
    );
}

// ---------------------------------------------------------------------------------------------
// Import circles.

/// Where an edge of the module graph comes from.
#[derive(Clone, Debug)]
struct Evidence {
    file: String,
    line: usize,
    text: String,
}

type Graph = BTreeMap<String, BTreeMap<String, Evidence>>;

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifier at the start of `s` (after whitespace).
fn ident(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(|c: char| !is_ident_char(c)).unwrap_or(s.len());
    &s[..end]
}

/// The text of the brace group starting at `s` (which starts with `{`), without the braces.
fn group(s: &str) -> &str {
    let mut depth = 0usize;
    for (k, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &s[1..k];
                }
            }
            _ => {}
        }
    }
    &s[1.min(s.len())..]
}

/// Splits a use-group's contents at its top-level commas.
fn split_group(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (k, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// The first segments a path or use-tree starting at `s` names: `a::b` → `[a]`,
/// `{a::b, c}` → `[a, c]`.
fn first_segments(s: &str) -> Vec<String> {
    let s = s.trim_start();
    if s.starts_with('{') {
        split_group(group(s))
            .into_iter()
            .flat_map(first_segments)
            .collect()
    } else {
        let id = ident(s);
        if id.is_empty() || id == "self" {
            Vec::new()
        } else {
            vec![id.to_string()]
        }
    }
}

/// Flattens a use-tree into (path, name it is imported as).
fn flatten_use(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if tree.starts_with('{') {
        for part in split_group(group(tree)) {
            flatten_use(part, prefix, out);
        }
        return;
    }
    let id = ident(tree);
    if id.is_empty() {
        return; // a glob, or something this reader does not resolve
    }
    let after = tree[id.len()..].trim_start();
    let mut path = prefix.to_vec();
    if id != "self" {
        path.push(id.to_string());
    }
    if let Some(more) = after.strip_prefix("::") {
        flatten_use(more, &path, out);
        return;
    }
    let alias = after
        .strip_prefix("as")
        .map(ident)
        .filter(|a| !a.is_empty());
    if let Some(name) = alias.or(path.last().map(String::as_str)) {
        let name = name.to_string();
        out.push((path, name));
    }
}

/// The `use` declarations of a code text, as (tree after `use`, byte offset).
fn use_trees(code: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    for (k, _) in code.match_indices("use ") {
        let before = code[..k].chars().next_back();
        if before.is_some_and(is_ident_char) {
            continue;
        }
        let rest = &code[k + 4..];
        if let Some(end) = rest.find(';') {
            out.push((&rest[..end], k));
        }
    }
    out
}

/// The top-level module a file belongs to, and how deep it is (`x.rs`, `x/mod.rs`: 1;
/// `x/a.rs`: 2); `None` for the roots and binaries.
fn module_of(rel: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [] => None,
        [file] => {
            let name = file.strip_suffix(".rs")?;
            (name != "lib" && name != "main").then(|| (name.to_string(), 1))
        }
        [dir, ..] if dir == "bin" => None,
        [dir, rest @ ..] => {
            let last = rest.last()?;
            let depth = if last == "mod.rs" {
                rest.len()
            } else {
                rest.len() + 1
            };
            Some((dir.clone(), depth))
        }
    }
}

/// The module graph of one crate.
fn module_graph(root: &str, files: &[File]) -> Graph {
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(&f.rel).map(|(m, _)| m))
        .collect();
    // What the root re-exports, by name: `pub use error::{Error, ErrorKind}` → Error → error.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for file in files.iter().filter(|f| f.rel == Path::new("lib.rs")) {
        let source = Source::parse(&file.text).without_test_items();
        for (tree, _) in use_trees(&source.code) {
            let mut flat = Vec::new();
            flatten_use(tree, &[], &mut flat);
            for (path, name) in flat {
                let path: Vec<&str> = path
                    .iter()
                    .map(String::as_str)
                    .skip_while(|s| *s == "crate" || *s == "self")
                    .collect();
                if let Some(first) = path.first()
                    && modules.contains(*first)
                    && path.len() > 1
                {
                    reexports.insert(name, first.to_string());
                }
            }
        }
    }
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for file in files {
        let Some((module, depth)) = module_of(&file.rel) else {
            continue;
        };
        let source = Source::parse(&file.text).without_test_items();
        let code = source.code.as_str();
        let mut refs: Vec<(usize, Vec<String>)> = Vec::new();
        // `crate::…` and `$crate::…`.
        for (k, _) in code.match_indices("crate::") {
            let before = code[..k].chars().next_back();
            if before.is_some_and(|c| is_ident_char(c) && c != '$') {
                continue;
            }
            refs.push((k, first_segments(&code[k + "crate::".len()..])));
        }
        // `super::…` chains that reach the crate root.
        let mut k = 0;
        while let Some(found) = code[k..].find("super::") {
            let start = k + found;
            let before = code[..start].chars().next_back();
            let mut end = start;
            let mut ups = 0;
            while code[end..].starts_with("super::") {
                ups += 1;
                end += "super::".len();
            }
            k = end;
            if before.is_some_and(is_ident_char) || ups < depth {
                continue;
            }
            refs.push((start, first_segments(&code[end..])));
        }
        for (offset, names) in refs {
            for name in names {
                let target = if modules.contains(&name) {
                    Some(name)
                } else {
                    reexports.get(&name).cloned()
                };
                let Some(target) = target.filter(|t| *t != module) else {
                    continue;
                };
                let line = source.line_of(offset);
                let text = file
                    .text
                    .lines()
                    .nth(line - 1)
                    .unwrap_or("")
                    .trim()
                    .to_string();
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| Evidence {
                        file: format!("{root}/{}", file.rel.display()),
                        line,
                        text,
                    });
            }
        }
    }
    graph
}

/// Every elementary cycle of the graph (each once, starting at its smallest module), shortest
/// first; at most `limit`.
fn cycles(graph: &Graph, limit: usize) -> (Vec<Vec<String>>, bool) {
    let nodes: Vec<&String> = graph.keys().collect();
    let mut found = Vec::new();
    let mut truncated = false;
    for (s, start) in nodes.iter().enumerate() {
        // DFS over nodes not smaller than the start, so each cycle is found once.
        let mut stack: Vec<(String, Vec<String>)> = vec![((*start).clone(), vec![])];
        let mut steps = 0usize;
        while let Some((node, mut path)) = stack.pop() {
            steps += 1;
            if steps > 200_000 {
                truncated = true;
                break;
            }
            path.push(node.clone());
            for next in graph.get(&node).into_iter().flat_map(|m| m.keys()) {
                if next == *start {
                    found.push(path.clone());
                    if found.len() >= limit {
                        return (found, true);
                    }
                } else if nodes.iter().position(|n| *n == next).is_some_and(|i| i > s)
                    && !path.contains(next)
                {
                    stack.push((next.clone(), path.clone()));
                }
            }
        }
    }
    found.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    (found, truncated)
}

/// The report for one crate's circles, empty when there is none.
fn circle_report(root: &str, files: &[File]) -> String {
    let graph = module_graph(root, files);
    let (found, truncated) = cycles(&graph, 10_000);
    if found.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{root}: {} import circle(s) between top-level modules{}:\n",
        found.len(),
        if truncated { " (stopped counting)" } else { "" }
    );
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for cycle in &found {
        let _ = writeln!(out, "  {} → {}", cycle.join(" → "), cycle[0]);
        for (i, from) in cycle.iter().enumerate() {
            edges.insert((from.clone(), cycle[(i + 1) % cycle.len()].clone()));
        }
    }
    let _ = writeln!(
        out,
        "  the edges in these circles (first reference of each):"
    );
    for (from, to) in edges {
        let e = &graph[&from][&to];
        let _ = writeln!(out, "    {from} → {to}: {}:{}: {}", e.file, e.line, e.text);
    }
    out
}

#[test]
fn no_import_circle_in_sdk_or_simulator() {
    let mut report = String::new();
    for root in CRATES {
        let files = read_crate(&workspace().join(root));
        let graph = module_graph(root, &files);
        assert!(
            graph.len() >= 5 && graph.values().any(|deps| !deps.is_empty()),
            "{root}: the module graph looks empty ({graph:?}): is the scan still reading it?"
        );
        report.push_str(&circle_report(root, &files));
    }
    assert!(
        report.is_empty(),
        "import circles: break each by moving what both sides need into a leaf module that \
         depends on neither (types, errors), or by passing it in from the composition root \
         (lib.rs / server.rs):\n{report}"
    );
}

#[test]
fn the_import_circle_check_can_fail() {
    let file = |rel: &str, text: &str| File {
        rel: rel.into(),
        text: text.to_string(),
    };
    let files = [
        file(
            "lib.rs",
            "mod client;\nmod request;\nmod error;\nmod leaf;\npub use error::{Error as Failure, ErrorKind};\npub use client::Client;\n",
        ),
        file(
            "client.rs",
            "//! Uses crate::leaf in a doc comment only.\nuse crate::{request::Call, leaf};\nfn f() -> crate::Failure { todo!() }\n",
        ),
        file(
            "request/mod.rs",
            "mod send;\nuse super::error::ErrorKind;\nlet s = \"crate::client\";\n",
        ),
        file(
            "request/send.rs",
            "use super::Call;\nfn g(c: &super::super::Client) {}\n",
        ),
        file(
            "error.rs",
            "#[cfg(test)]\nmod tests { use crate::client::Client; }\npub struct Error;\n",
        ),
        file("leaf.rs", "pub struct Leaf;\n"),
    ];
    let graph = module_graph("demo", &files);
    let deps = |m: &str| graph[m].keys().cloned().collect::<Vec<_>>();
    assert_eq!(deps("client"), ["error", "leaf", "request"]);
    assert_eq!(deps("request"), ["client", "error"]);
    assert!(deps("error").is_empty(), "test items are not read");
    assert!(deps("leaf").is_empty());
    let report = circle_report("demo", &files);
    assert!(report.contains("  client → request → client\n"), "{report}");
    assert!(
        report.contains(
            "    request → client: demo/request/send.rs:2: fn g(c: &super::super::Client) {}"
        ),
        "{report}"
    );
    assert_eq!(report.matches(" → client\n").count(), 1, "{report}");
    // Without the back edge, no circle.
    let acyclic: Vec<File> = files
        .iter()
        .map(|f| File {
            rel: f.rel.clone(),
            text: f.text.replace("super::super::Client", "u8"),
        })
        .collect();
    assert_eq!(circle_report("demo", &acyclic), "");
}

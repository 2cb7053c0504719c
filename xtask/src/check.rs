//! `cargo xtask check`: the committed generated file must be what `generate` would write.

use similar::{ChangeTag, TextDiff};

use crate::{Paths, Result, codegen, display_path};

/// How many changed lines of the diff are shown.
const SHOWN_CHANGES: usize = 60;

/// Regenerates in memory and compares with the committed file.
pub fn check(paths: &Paths) -> Result<()> {
    let fresh = codegen::generate(&paths.spec)
        .map_err(|e| format!("cannot regenerate {}: {e}", display_path(&paths.out)))?;
    let committed = match std::fs::read_to_string(&paths.out) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} does not exist; run `{}`",
                display_path(&paths.out),
                generate_command(paths)
            ));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", paths.out.display())),
    };
    if committed == fresh {
        println!(
            "{} is up to date with {}",
            display_path(&paths.out),
            display_path(&paths.spec)
        );
        return Ok(());
    }
    Err(format!(
        "{} is stale: it differs from what {} generates.\n\n{}\nrun `{}` and commit the result",
        display_path(&paths.out),
        display_path(&paths.spec),
        diff_summary(&committed, &fresh, &display_path(&paths.out)),
        generate_command(paths)
    ))
}

fn generate_command(paths: &Paths) -> String {
    let defaults = Paths::defaults();
    let mut command = "cargo xtask generate".to_string();
    if paths.spec != defaults.spec {
        command.push_str(&format!(" --spec {}", display_path(&paths.spec)));
    }
    if paths.out != defaults.out {
        command.push_str(&format!(" --out {}", display_path(&paths.out)));
    }
    command
}

/// A unified diff (committed → fresh) cut after [`SHOWN_CHANGES`] changed lines, and the
/// counts of added and removed lines.
pub fn diff_summary(old: &str, new: &str, name: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0usize, 0usize);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }

    let mut out = format!("--- {name} (committed)\n+++ {name} (generated)\n");
    let mut shown = 0usize;
    'hunks: for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        out.push_str(&format!("{}\n", hunk.header()));
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                ChangeTag::Insert => '+',
                ChangeTag::Delete => '-',
                ChangeTag::Equal => ' ',
            };
            out.push(sign);
            out.push_str(change.as_str().unwrap_or("").trim_end_matches('\n'));
            out.push('\n');
            if change.tag() != ChangeTag::Equal {
                shown += 1;
                if shown >= SHOWN_CHANGES {
                    break 'hunks;
                }
            }
        }
    }
    let total = added + removed;
    if total > shown {
        out.push_str(&format!("... and {} more changed lines\n", total - shown));
    }
    out.push_str(&format!(
        "{added} line(s) added, {removed} line(s) removed\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_summary_counts_and_truncates() {
        let old: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..200)
            .map(|i| {
                if i % 2 == 0 {
                    format!("changed {i}\n")
                } else {
                    format!("line {i}\n")
                }
            })
            .collect();
        let summary = diff_summary(&old, &new, "f.rs");
        assert!(summary.starts_with("--- f.rs (committed)\n+++ f.rs (generated)\n@@"));
        assert!(summary.contains("-line 0\n+changed 0\n"), "{summary}");
        assert!(
            summary.contains("... and 140 more changed lines\n"),
            "{summary}"
        );
        assert!(summary.ends_with("100 line(s) added, 100 line(s) removed\n"));
        let shown = summary
            .lines()
            .filter(|l| l.starts_with("-line") || l.starts_with("+changed"))
            .count();
        assert_eq!(shown, SHOWN_CHANGES);
    }

    #[test]
    fn stale_and_missing_files_fail_with_the_command_to_run() {
        let dir = std::env::temp_dir().join(format!("xtask-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = Paths {
            spec: crate::workspace_root().join(crate::MINI_SPEC),
            out: dir.join("generated.rs"),
        };
        let err = check(&paths).unwrap_err();
        assert!(err.contains("does not exist; run `cargo xtask generate --spec xtask/tests/fixtures/mini.yaml --out "), "{err}");

        codegen::generate_to_file(&paths).unwrap();
        check(&paths).unwrap();

        let text = std::fs::read_to_string(&paths.out).unwrap();
        std::fs::write(
            &paths.out,
            text.replacen("pub struct Odometer {", "pub struct Odo {", 1),
        )
        .unwrap();
        let err = check(&paths).unwrap_err();
        assert!(err.contains("is stale"), "{err}");
        assert!(
            err.contains("-    pub struct Odo {\n+    pub struct Odometer {\n"),
            "{err}"
        );
        assert!(err.contains("1 line(s) added, 1 line(s) removed"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_spec_is_reported_clearly() {
        let paths = Paths {
            spec: crate::workspace_root().join("does/not/exist.yaml"),
            out: crate::workspace_root().join(crate::DEFAULT_OUT),
        };
        let err = check(&paths).unwrap_err();
        assert!(err.contains("spec not found at "), "{err}");
    }
}

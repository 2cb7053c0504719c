//! The fuzz targets follow the operation table: `fuzz/fuzz_targets/responses.rs` decodes the
//! success body of every operation of `smartcar_api::ops::ALL` that has one (through the
//! generated `smartcar_api::for_each_endpoint!`, so by construction), and
//! `fuzz/corpus/responses/` holds a seed per such operation, made from the spec's example
//! (checked here).
//!
//! The token grants (tag `auth`) are left out: their answers go through `oauth2` and are fuzzed
//! by the `token_response` target.
//!
//! A missing seed is written from the spec when the test runs with `SMARTCAR_WRITE_SEEDS=1`
//! (then review and commit `fuzz/corpus/responses/seed-<operationId>`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use smartcar_api::op::Operation;
use smartcar_api::ops;
use smartcar_tests::spec::Spec;

/// The `Meta` headers every response seed carries.
const SEED_HEADERS: &str = "sc-request-id: 7f1c2d3e-0000-4000-8000-000000000001\n\
sc-data-age: 2024-05-01T12:00:00.000Z\n\
sc-fetched-at: 2024-05-01T12:00:03.250Z\n\
sc-unit-system: metric\n";

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The operations the `responses` target must decode.
fn with_a_body() -> impl Iterator<Item = &'static Operation> {
    ops::ALL
        .iter()
        .filter(|op| op.generated && op.response.is_some() && op.tag != "auth")
}

/// The spec's example of an operation's success body: (status, JSON text).
fn success_example(spec: &Spec, op: &Operation) -> Option<(String, String)> {
    let doc_op = spec.operation(op)?;
    let responses = doc_op.op.get("responses")?.as_object()?;
    responses
        .iter()
        .filter(|(status, _)| status.starts_with('2'))
        .find_map(|(status, response)| {
            let media = spec
                .resolve(response)?
                .pointer("/content/application~1json")?;
            let example = media.get("example").cloned().or_else(|| {
                let first = media.get("examples")?.as_object()?.values().next()?;
                spec.resolve(first)?.get("value").cloned()
            })?;
            Some((status.clone(), serde_json::to_string(&example).ok()?))
        })
}

#[test]
fn every_operation_with_a_body_has_a_response_seed() {
    let spec = Spec::load();
    let corpus = fuzz_dir().join("corpus/responses");
    let write = std::env::var_os("SMARTCAR_WRITE_SEEDS").is_some_and(|v| v == "1");
    let mut problems = Vec::new();
    let mut written = Vec::new();
    for op in with_a_body() {
        let file = corpus.join(format!("seed-{}", op.id));
        match std::fs::read_to_string(&file) {
            Ok(seed) => {
                let first = seed.lines().next().unwrap_or("");
                let ok = first
                    .split_once(' ')
                    .is_some_and(|(status, word)| status.starts_with('2') && word == op.id);
                if !ok {
                    problems.push(format!(
                        "{}: first line `{first}`, expected `2xx {}`",
                        file.display(),
                        op.id
                    ));
                }
                let body = seed.split_once("\n\n").map_or("", |(_, b)| b);
                if serde_json::from_str::<Value>(body).is_err() {
                    problems.push(format!("{}: the body is not JSON", file.display()));
                }
            }
            Err(_) => match success_example(&spec, op) {
                Some((status, body)) if write => {
                    let text = format!("{status} {}\n{SEED_HEADERS}\n{body}", op.id);
                    std::fs::write(&file, text)
                        .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
                    written.push(file.display().to_string());
                }
                Some(_) => problems.push(format!(
                    "{} is missing: run `SMARTCAR_WRITE_SEEDS=1 cargo nextest run -p \
                     smartcar-tests --test fuzz_corpus` to write it from the spec's example",
                    file.display()
                )),
                None => problems.push(format!(
                    "{op}: the spec has no JSON example for its success response; add one \
                     (openapi/smartcar.yaml), then write the seed"
                )),
            },
        }
    }
    if !written.is_empty() {
        eprintln!("wrote {} seed(s):\n{}", written.len(), written.join("\n"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

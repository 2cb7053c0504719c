//! Lint of `openapi/smartcar.yaml`: every operation is documented the way the project requires,
//! every `$ref` resolves, and every example satisfies its schema.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use smartcar_tests::spec::{Spec, Strictness};

fn declared_tags(spec: &Spec) -> BTreeSet<String> {
    spec.doc()["tags"]
        .as_array()
        .expect("top-level tags")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_operation_is_documented() {
    let spec = Spec::load();
    let tags = declared_tags(&spec);
    let mut problems = Vec::new();
    let mut ids = HashMap::new();
    let ops = spec.operations();
    assert!(
        ops.len() >= 50,
        "the spec describes the whole platform; found only {} operations",
        ops.len()
    );
    for op in &ops {
        let here = format!("{} {}", op.method.to_uppercase(), op.path);
        let id = op.id();
        if id.is_empty() {
            problems.push(format!("{here}: no operationId"));
        } else if !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            problems.push(format!("{here}: operationId `{id}` is not snake_case"));
        }
        if let Some(first) = ids.insert(id.to_owned(), here.clone()) {
            problems.push(format!("{here}: operationId `{id}` also used by {first}"));
        }
        match op.op["tags"].as_array() {
            Some(t) if !t.is_empty() => {
                for tag in t.iter().filter_map(Value::as_str) {
                    if !tags.contains(tag) {
                        problems.push(format!("{here}: tag `{tag}` is not declared"));
                    }
                }
            }
            _ => problems.push(format!("{here}: no tag")),
        }
        if op.op["summary"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{here}: no summary"));
        }
        let responses = op.op["responses"].as_object();
        let Some(responses) = responses else {
            problems.push(format!("{here}: no responses"));
            continue;
        };
        if responses.contains_key("default") {
            problems.push(format!(
                "{here}: `default` response (progenitor treats it as a success too; list 4XX/5XX)"
            ));
        }
        if !responses
            .keys()
            .any(|k| k.starts_with('4') || k.starts_with('5'))
        {
            problems.push(format!("{here}: no documented error response"));
        }
        for (status, response) in responses {
            let Some(resolved) = spec.resolve(response) else {
                problems.push(format!("{here} {status}: response $ref does not resolve"));
                continue;
            };
            if resolved["description"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{here} {status}: no description"));
            }
            let json_body = resolved["content"]
                .get("application/json")
                .filter(|_| status.starts_with('2'));
            if json_body.is_some_and(|m| m.get("example").is_none() && m.get("examples").is_none())
            {
                problems.push(format!("{here} {status}: JSON body without an example"));
            }
        }
        // Path template parameters and `in: path` parameters agree.
        let in_template: BTreeSet<&str> = op
            .path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        let declared: BTreeSet<&str> = op
            .path_item
            .get("parameters")
            .into_iter()
            .chain(op.op.get("parameters"))
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|p| spec.resolve(p))
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        if in_template != declared {
            problems.push(format!(
                "{here}: path parameters {in_template:?} but declared {declared:?}"
            ));
        }
        // A path item that names a host names one of the top-level servers.
        let servers: BTreeSet<&str> = spec.doc()["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["url"].as_str())
            .collect();
        for s in op.path_item["servers"].as_array().into_iter().flatten() {
            let url = s["url"].as_str().unwrap_or("");
            if !servers.contains(url) {
                problems.push(format!("{here}: server {url} is not a top-level server"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "spec problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_ref_resolves() {
    let spec = Spec::load();
    let mut bad = Vec::new();
    fn walk(spec: &Spec, v: &Value, at: &str, bad: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let ok = r
                        .strip_prefix('#')
                        .is_some_and(|p| spec.doc().pointer(p).is_some());
                    if !ok {
                        bad.push(format!("{at}: {r}"));
                    }
                }
                for (k, v) in m {
                    walk(spec, v, &format!("{at}/{k}"), bad);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(spec, v, &format!("{at}/{i}"), bad);
                }
            }
            _ => {}
        }
    }
    walk(&spec, spec.doc(), "", &mut bad);
    assert!(bad.is_empty(), "unresolved $refs:\n{}", bad.join("\n"));
}

#[test]
fn open_enums_are_string_enums() {
    let spec = Spec::load();
    let schemas = spec.doc()["components"]["schemas"].as_object().unwrap();
    let open: Vec<_> = schemas
        .iter()
        .filter(|(_, s)| s["x-open-enum"] == true)
        .collect();
    assert!(!open.is_empty());
    for (name, s) in open {
        assert_eq!(
            s["type"], "string",
            "{name}: x-open-enum needs type: string"
        );
        let values = s["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no enum"));
        let unique: BTreeSet<_> = values.iter().filter_map(Value::as_str).collect();
        assert_eq!(
            unique.len(),
            values.len(),
            "{name}: duplicate or non-string values"
        );
    }
}

#[test]
fn every_example_satisfies_its_schema() {
    let spec = Spec::load();
    let examples = spec.examples();
    // Every 2xx JSON body has one (checked above), plus requests, errors and components.
    assert!(
        examples.len() >= 80,
        "expected the spec's examples, found only {}",
        examples.len()
    );
    let mut failures = Vec::new();
    for ex in &examples {
        // Strict: an example may not use a field the schema does not document.
        if let Err(errors) = spec.check(ex.schema, ex.value, Strictness::Strict) {
            failures.push(format!("{}:\n  {}", ex.location, errors.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples do not match their schema:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}

/// The validation above must be able to fail: a wrong type, a misspelt field, an unknown value of
/// a closed enum and a malformed date-time are all reported.
#[test]
fn example_validation_rejects_bad_bodies() {
    let spec = Spec::load();
    let cases = [
        ("Odometer", json!({"distance": "far"})),
        ("Odometer", json!({"distance": 1.0, "distanse": 2.0})),
        ("SecurityActionRequest", json!({"action": "OPEN"})),
        (
            "TroubleCode",
            json!({"code": "P0420", "timestamp": "yesterday"}),
        ),
        ("VehicleList", json!({"vehicles": []})),
        ("FuelTank", json!({"range": true})),
    ];
    for (name, body) in cases {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        assert!(
            spec.check(&schema, &body, Strictness::Strict).is_err(),
            "{name} accepted {body}"
        );
    }
    // …while nullable fields accept null.
    let fuel = json!({"$ref": "#/components/schemas/FuelTank"});
    let body = json!({"amountRemaining": null, "percentRemaining": 0.5, "range": null});
    assert_eq!(spec.check(&fuel, &body, Strictness::Strict), Ok(()));
}

/// The generated operation table (`smartcar_api::ops`) against the document, read
/// independently: same operations, methods, paths, first tags and `x-codegen-skip`. A
/// difference means `generated.rs` is stale (`cargo xtask generate`) or the generator misreads
/// the spec.
#[test]
fn the_operation_table_matches_the_document() {
    let spec = Spec::load();
    let mut problems = Vec::new();
    let doc_ops = spec.operations();
    for op in &doc_ops {
        let here = format!("{} {}", op.method.to_uppercase(), op.path);
        let Some(table) = smartcar_api::op::Operation::by_id(op.id()) else {
            problems.push(format!("{here}: `{}` is not in ops::ALL", op.id()));
            continue;
        };
        if !table.method.as_str().eq_ignore_ascii_case(op.method) || table.path != op.path {
            problems.push(format!("{here}: ops::ALL says {table}"));
        }
        let tag = op
            .op
            .pointer("/tags/0")
            .and_then(Value::as_str)
            .unwrap_or("");
        if table.tag != tag {
            problems.push(format!(
                "{here}: tag `{tag}`, ops::ALL says `{}`",
                table.tag
            ));
        }
        if table.generated == op.codegen_skipped() {
            problems.push(format!(
                "{here}: x-codegen-skip is {}, ops::ALL says generated = {}",
                op.codegen_skipped(),
                table.generated
            ));
        }
    }
    if smartcar_api::ops::ALL.len() != doc_ops.len() {
        problems.push(format!(
            "ops::ALL has {} operations, the document {}",
            smartcar_api::ops::ALL.len(),
            doc_ops.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "the generated operation table is out of date (run `cargo xtask generate`) or wrong:\n{}",
        problems.join("\n")
    );
}

//! The project's OpenAPI description (`openapi/smartcar.yaml`), loaded for tests.
//!
//! Two uses: the spec lint (every operation documented, every example valid) and, later, checking
//! every body the simulator sends against the schema the spec gives for it.
//!
//! OpenAPI 3.0 schemas are *almost* JSON Schema. [`Spec::validator`] converts them to JSON Schema
//! draft 7 (`nullable` becomes a `null` alternative, `#/components/schemas/X` becomes
//! `#/definitions/X`, vendor extensions are dropped) and, in [`Strictness::Strict`] mode, closes
//! every object that lists its properties (`additionalProperties: false`) so that a misspelt field
//! in an example, or an undocumented field in a simulator response, is reported.
//!
//! ```
//! let spec = smartcar_tests::spec::Spec::load();
//! let odometer = serde_json::json!({"$ref": "#/components/schemas/Odometer"});
//! let check = spec.validator(&odometer, smartcar_tests::spec::Strictness::Strict).unwrap();
//! assert!(check.validate(&serde_json::json!({"distance": 1.5})).is_ok());
//! assert!(check.validate(&serde_json::json!({"distanse": 1.5})).is_err());
//! ```

use std::path::PathBuf;

use serde_json::{Map, Value, json};

/// HTTP methods an OpenAPI path item may hold operations for.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Whether objects accept properties the schema does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// As the spec says: undocumented properties are allowed (the real API may add fields).
    Lenient,
    /// Objects with `properties` reject anything else: for our own examples and simulator output.
    Strict,
}

/// One operation of the spec.
#[derive(Clone, Debug)]
pub struct Operation<'a> {
    /// Lower-case HTTP method.
    pub method: &'static str,
    /// Path template, e.g. `/v2.0/vehicles/{vehicle_id}/odometer`.
    pub path: &'a str,
    /// The path item (for path-level `servers` and `parameters`).
    pub path_item: &'a Value,
    /// The operation object.
    pub op: &'a Value,
}

impl Operation<'_> {
    /// The `operationId`, or `""` when missing.
    pub fn id(&self) -> &str {
        self.op
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Whether `cargo xtask generate` leaves this operation out (`x-codegen-skip: true`).
    pub fn codegen_skipped(&self) -> bool {
        self.op.get("x-codegen-skip") == Some(&Value::Bool(true))
    }
}

/// An example found in the spec, with the schema it must satisfy.
#[derive(Clone, Debug)]
pub struct Example<'a> {
    /// Where it is, for messages (e.g. `GET /v2.0/user 200 application/json`).
    pub location: String,
    /// The schema (possibly a `$ref`).
    pub schema: &'a Value,
    /// The example value.
    pub value: &'a Value,
}

/// The loaded description.
#[derive(Debug)]
pub struct Spec {
    doc: Value,
    /// `components.schemas`, converted once per strictness.
    definitions_lenient: Value,
    definitions_strict: Value,
}

impl Spec {
    /// Path of `openapi/smartcar.yaml` in this workspace.
    pub fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("openapi")
            .join("smartcar.yaml")
    }

    /// Loads and parses the workspace's spec. Panics (this is test support) when it is missing
    /// or is not YAML.
    pub fn load() -> Spec {
        let path = Self::path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Self::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Parses a spec from YAML text.
    pub fn from_yaml(text: &str) -> Result<Spec, String> {
        let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
        let schemas = doc
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let convert_all = |strictness| {
            let map: Map<String, Value> = schemas
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), to_json_schema(v, strictness)))
                        .collect()
                })
                .unwrap_or_default();
            Value::Object(map)
        };
        Ok(Spec {
            definitions_lenient: convert_all(Strictness::Lenient),
            definitions_strict: convert_all(Strictness::Strict),
            doc,
        })
    }

    /// The raw document.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// Every operation, in document order, read from the document itself.
    ///
    /// This is deliberately independent of `smartcar_api::ops` (what the generator made of the
    /// spec): the lint checks the document, and `tests/tests/spec_lint.rs` compares the two.
    /// To name an operation, use its `ops` constant and [`Spec::operation`].
    pub fn operations(&self) -> Vec<Operation<'_>> {
        let mut out = Vec::new();
        if let Some(paths) = self.doc.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                for method in METHODS {
                    if let Some(op) = item.get(method) {
                        out.push(Operation {
                            method,
                            path,
                            path_item: item,
                            op,
                        });
                    }
                }
            }
        }
        out
    }

    /// The document's operation for an `ops` constant (same `operationId`), for its response
    /// schemas; `None` when the spec no longer has it.
    ///
    /// ```
    /// let spec = smartcar_tests::spec::Spec::load();
    /// let odometer = spec.operation(&smartcar_api::ops::GET_ODOMETER).unwrap();
    /// assert_eq!(odometer.path, "/v2.0/vehicles/{vehicle_id}/odometer");
    /// assert!(spec.response(&odometer, "200").is_some());
    /// ```
    pub fn operation(&self, op: &smartcar_api::op::Operation) -> Option<Operation<'_>> {
        self.operations().into_iter().find(|o| o.id() == op.id)
    }

    /// Follows a local `$ref` (any depth) to the object it names; other values come back as is.
    /// Returns `None` for a `$ref` that does not resolve.
    pub fn resolve<'a>(&'a self, mut value: &'a Value) -> Option<&'a Value> {
        for _ in 0..32 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(r) => value = self.doc.pointer(r.strip_prefix('#')?)?,
                None => return Some(value),
            }
        }
        None
    }

    /// The response object of `op` for `status` (e.g. `"200"`, `"4XX"`), `$ref`s resolved.
    pub fn response<'a>(&'a self, op: &Operation<'a>, status: &str) -> Option<&'a Value> {
        self.resolve(op.op.get("responses")?.get(status)?)
    }

    /// Every example in the document with the schema it belongs to: response and request bodies
    /// (`example` and each of `examples`), parameters, headers and component schemas.
    pub fn examples(&self) -> Vec<Example<'_>> {
        let mut out = Vec::new();
        for op in self.operations() {
            let here = format!("{} {}", op.method.to_uppercase(), op.path);
            if let Some(body) = op.op.get("requestBody").and_then(|b| self.resolve(b)) {
                self.collect_media(&format!("{here} request"), body, &mut out);
            }
            if let Some(responses) = op.op.get("responses").and_then(Value::as_object) {
                for (status, response) in responses {
                    // Shared responses are checked once, under components.responses.
                    if response.get("$ref").is_some() {
                        continue;
                    }
                    self.collect_media(&format!("{here} {status}"), response, &mut out);
                    self.collect_headers(&format!("{here} {status}"), response, &mut out);
                }
            }
            for p in op
                .path_item
                .get("parameters")
                .into_iter()
                .chain(op.op.get("parameters"))
                .filter_map(Value::as_array)
                .flatten()
            {
                if p.get("$ref").is_some() {
                    continue;
                }
                self.collect_parameter(&here, p, &mut out);
            }
        }
        let components = self.doc.get("components");
        let section = |name: &str| {
            components
                .and_then(|c| c.get(name))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
        };
        for (name, response) in section("responses") {
            let location = format!("components.responses.{name}");
            self.collect_media(&location, response, &mut out);
            self.collect_headers(&location, response, &mut out);
        }
        for (name, p) in section("parameters") {
            self.collect_parameter(&format!("components.parameters.{name}"), p, &mut out);
        }
        for (name, h) in section("headers") {
            if let (Some(schema), Some(value)) = (h.get("schema"), h.get("example")) {
                out.push(Example {
                    location: format!("components.headers.{name}"),
                    schema,
                    value,
                });
            }
        }
        for (name, schema) in section("schemas") {
            if let Some(value) = schema.get("example") {
                out.push(Example {
                    location: format!("components.schemas.{name}"),
                    schema,
                    value,
                });
            }
        }
        out
    }

    fn collect_media<'a>(&'a self, location: &str, holder: &'a Value, out: &mut Vec<Example<'a>>) {
        let Some(content) = holder.get("content").and_then(Value::as_object) else {
            return;
        };
        for (mime, media) in content {
            let Some(schema) = media.get("schema") else {
                continue;
            };
            if let Some(value) = media.get("example") {
                out.push(Example {
                    location: format!("{location} {mime}"),
                    schema,
                    value,
                });
            }
            for (name, ex) in media
                .get("examples")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(value) = self.resolve(ex).and_then(|e| e.get("value")) {
                    out.push(Example {
                        location: format!("{location} {mime} examples.{name}"),
                        schema,
                        value,
                    });
                }
            }
        }
    }

    fn collect_headers<'a>(
        &'a self,
        location: &str,
        response: &'a Value,
        out: &mut Vec<Example<'a>>,
    ) {
        for (name, header) in response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if header.get("$ref").is_some() {
                continue;
            }
            if let (Some(schema), Some(value)) = (header.get("schema"), header.get("example")) {
                out.push(Example {
                    location: format!("{location} header {name}"),
                    schema,
                    value,
                });
            }
        }
    }

    fn collect_parameter<'a>(&'a self, location: &str, p: &'a Value, out: &mut Vec<Example<'a>>) {
        if let (Some(schema), Some(value)) = (p.get("schema"), p.get("example")) {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("?");
            out.push(Example {
                location: format!("{location} parameter {name}"),
                schema,
                value,
            });
        }
    }

    /// A JSON Schema (draft 7) validator for an OpenAPI schema of this spec, with format checks on.
    pub fn validator(
        &self,
        schema: &Value,
        strictness: Strictness,
    ) -> Result<jsonschema::Validator, String> {
        let mut root = match to_json_schema(schema, strictness) {
            Value::Object(m) => m,
            // `true`/`false` schemas cannot carry definitions: wrap them.
            other => {
                let mut m = Map::new();
                m.insert("allOf".into(), Value::Array(vec![other]));
                m
            }
        };
        let definitions = match strictness {
            Strictness::Lenient => &self.definitions_lenient,
            Strictness::Strict => &self.definitions_strict,
        };
        root.insert("definitions".into(), definitions.clone());
        jsonschema::draft7::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .map_err(|e| format!("schema does not compile: {e}"))
    }

    /// Validates `instance` against `schema`; every violation, with its JSON path.
    pub fn check(
        &self,
        schema: &Value,
        instance: &Value,
        strictness: Strictness,
    ) -> Result<(), Vec<String>> {
        let validator = self.validator(schema, strictness).map_err(|e| vec![e])?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Converts an OpenAPI 3.0 schema object to JSON Schema draft 7.
pub fn to_json_schema(schema: &Value, strictness: Strictness) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    if let Some(Value::String(r)) = obj.get("$ref") {
        // In OpenAPI 3.0 siblings of `$ref` are ignored; so are they here.
        let target = r.replace("#/components/schemas/", "#/definitions/");
        return json!({ "$ref": target });
    }
    let mut out = Map::new();
    for (key, value) in obj {
        if key.starts_with("x-") {
            continue;
        }
        let converted = match key.as_str() {
            // OpenAPI-only annotations.
            "nullable" | "example" | "discriminator" | "xml" | "externalDocs" | "readOnly"
            | "writeOnly" | "deprecated" => continue,
            "properties" => Value::Object(
                value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), to_json_schema(v, strictness)))
                    .collect(),
            ),
            "items" | "not" => to_json_schema(value, strictness),
            "additionalProperties" => match value {
                Value::Bool(_) => value.clone(),
                v => to_json_schema(v, strictness),
            },
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| to_json_schema(v, strictness))
                    .collect(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if strictness == Strictness::Strict
        && out.contains_key("properties")
        && !out.contains_key("additionalProperties")
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    let nullable = obj.get("nullable") == Some(&Value::Bool(true));
    if !nullable {
        return Value::Object(out);
    }
    match out.get("type").cloned() {
        Some(Value::String(t)) => {
            out.insert("type".into(), json!([t, "null"]));
            if let Some(Value::Array(values)) = out.get_mut("enum") {
                values.push(Value::Null);
            }
            Value::Object(out)
        }
        _ => json!({ "anyOf": [Value::Object(out), { "type": "null" }] }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_a_null_alternative() {
        let s = json!({"type": "number", "nullable": true});
        assert_eq!(
            to_json_schema(&s, Strictness::Lenient),
            json!({"type": ["number", "null"]})
        );
        let r = json!({"nullable": true, "allOf": [{"$ref": "#/components/schemas/X"}]});
        assert_eq!(
            to_json_schema(&r, Strictness::Lenient),
            json!({"anyOf": [{"allOf": [{"$ref": "#/definitions/X"}]}, {"type": "null"}]})
        );
    }

    #[test]
    fn strict_closes_objects_that_list_properties() {
        let s =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "x-open-enum": true});
        assert_eq!(
            to_json_schema(&s, Strictness::Strict),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false})
        );
        let open = json!({"type": "object", "additionalProperties": true});
        assert_eq!(to_json_schema(&open, Strictness::Strict), open);
    }
}

//! `cargo xtask generate`: OpenAPI YAML → preprocess → progenitor → prettyplease → file.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use proc_macro2::TokenStream;
use quote::quote;
use serde_json::Value;

use crate::open_enums::{self, OpenEnum};
use crate::{Paths, Result, display_path};

/// HTTP methods of an OpenAPI path item.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Reads `paths.spec`, generates, and writes `paths.out`.
pub fn generate_to_file(paths: &Paths) -> Result<()> {
    let code = generate(&paths.spec)?;
    if let Some(dir) = paths.out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&paths.out, &code)
        .map_err(|e| format!("cannot write {}: {e}", paths.out.display()))?;
    println!(
        "wrote {} ({} lines) from {}",
        display_path(&paths.out),
        code.lines().count(),
        display_path(&paths.spec)
    );
    Ok(())
}

/// The whole generated file for the spec at `spec_path`.
pub fn generate(spec_path: &Path) -> Result<String> {
    let doc = load_spec(spec_path)?;
    let shown = display_path(spec_path);
    render(doc, &shown).map_err(|e| format!("{shown}: {e}"))
}

/// Reads a YAML (or JSON) OpenAPI document into a JSON value.
pub fn load_spec(spec_path: &Path) -> Result<Value> {
    let text = match std::fs::read_to_string(spec_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("spec not found at {}", spec_path.display()));
        }
        Err(e) => return Err(format!("cannot read spec {}: {e}", spec_path.display())),
    };
    parse_spec(&text).map_err(|e| format!("{}: {e}", spec_path.display()))
}

/// Parses YAML text (JSON is YAML too), applying `<<` merge keys.
pub fn parse_spec(text: &str) -> Result<Value> {
    let mut yaml: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    yaml.apply_merge()
        .map_err(|e| format!("bad YAML merge key: {e}"))?;
    serde_yaml::from_value(yaml).map_err(|e| format!("not representable as JSON: {e}"))
}

/// What preprocessing found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Preprocessed {
    /// The `x-open-enum` component schemas, in component order.
    pub open_enums: Vec<OpenEnum>,
    /// Operations removed by `x-codegen-skip`, as `METHOD /path`.
    pub skipped: Vec<String>,
}

/// Applies the vendor extensions the spec uses, in place:
/// - `x-codegen-skip: true` on an operation removes it (and its path item if nothing is left);
/// - `x-open-enum: true` on a component string enum collects it as an [`OpenEnum`] (progenitor
///   is told to use the emitted open enum instead of generating a closed one).
pub fn preprocess(doc: &mut Value) -> Result<Preprocessed> {
    let mut out = Preprocessed::default();

    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let mut emptied = Vec::new();
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for method in METHODS {
                let Some(op) = item.get(method) else {
                    continue;
                };
                let skip = match op.get("x-codegen-skip") {
                    None | Some(Value::Bool(false)) => false,
                    Some(Value::Bool(true)) => true,
                    Some(other) => {
                        return Err(format!(
                            "{} {path}: x-codegen-skip must be true or false, found {other}",
                            method.to_uppercase()
                        ));
                    }
                };
                if skip {
                    item.remove(method);
                    out.skipped
                        .push(format!("{} {path}", method.to_uppercase()));
                }
            }
            if !METHODS.iter().any(|m| item.contains_key(*m)) {
                emptied.push(path.clone());
            }
        }
        for path in emptied {
            paths.remove(&path);
        }
    }

    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            let pointer = format!("/components/schemas/{name}");
            let Some(schema) = schema.as_object() else {
                continue;
            };
            match schema.get("x-open-enum") {
                None | Some(Value::Bool(false)) => {}
                Some(Value::Bool(true)) => {
                    out.open_enums.push(OpenEnum::new(name, schema, &pointer)?)
                }
                Some(other) => {
                    return Err(format!(
                        "{pointer}: x-open-enum must be true or false, found {other}"
                    ));
                }
            }
        }
    }

    // x-open-enum anywhere else would be silently ignored by the generator: refuse it.
    let mut misplaced = Vec::new();
    find_misplaced_open_enums(doc, String::new(), &mut misplaced);
    if !misplaced.is_empty() {
        return Err(format!(
            "x-open-enum is only supported on component schemas (components.schemas.X), \
             found at: {}",
            misplaced.join(", ")
        ));
    }
    Ok(out)
}

fn find_misplaced_open_enums(value: &Value, pointer: String, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("x-open-enum") && !is_component_schema(&pointer) {
                found.push(if pointer.is_empty() {
                    "/".into()
                } else {
                    pointer.clone()
                });
            }
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                find_misplaced_open_enums(child, format!("{pointer}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                find_misplaced_open_enums(child, format!("{pointer}/{i}"), found);
            }
        }
        _ => {}
    }
}

fn is_component_schema(pointer: &str) -> bool {
    pointer
        .strip_prefix("/components/schemas/")
        .is_some_and(|rest| !rest.contains('/'))
}

/// The generator settings (one place, so the tests exercise exactly what `generate` uses).
pub fn settings(open_enums: &[OpenEnum]) -> progenitor::GenerationSettings {
    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Separate)
        .with_derive("PartialEq")
        .with_derive("schemars::JsonSchema")
        .with_inner_type(quote!(crate::Auth));
    for e in open_enums {
        settings.with_replacement(
            &e.name,
            e.rust_path(),
            [
                progenitor::TypeImpl::FromStr,
                progenitor::TypeImpl::FromStringIrrefutable,
                progenitor::TypeImpl::Display,
            ]
            .into_iter(),
        );
    }
    settings
}

/// Preprocesses `doc` and generates the token stream of the whole file (progenitor's output
/// plus the open enums).
pub fn generate_tokens(mut doc: Value) -> Result<TokenStream> {
    // The operation table lists skipped operations too: read it before preprocessing.
    let ops = crate::ops::collect(&doc)?;
    let pre = preprocess(&mut doc)?;
    let spec: openapiv3::OpenAPI = serde_json::from_value(doc)
        .map_err(|e| format!("not a valid OpenAPI 3.0 document: {e}"))?;
    let settings = settings(&pre.open_enums);
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = catch_panic(|| generator.generate_tokens(&spec))
        .map_err(|panic| {
            format!(
                "progenitor panicked: {panic}\n\
                 (common causes: a `default` response next to a 2XX one, operations whose \
                 error responses have different schemas, duplicate operationIds)"
            )
        })?
        .map_err(|e| format!("progenitor cannot generate a client from this spec: {e}"))?;
    check_replacements(&tokens, &pre.open_enums)?;
    crate::ops::check_types(&ops, &type_names(&tokens)?)?;
    let open = open_enums::emit(&pre.open_enums);
    let table = crate::ops::emit(&ops);
    Ok(quote! { #tokens #open #table })
}

/// The names of the items of the generated `types` module.
fn type_names(tokens: &TokenStream) -> Result<std::collections::BTreeSet<String>> {
    let file: syn::File = syn::parse2(tokens.clone())
        .map_err(|e| format!("progenitor produced code that does not parse: {e}"))?;
    let mut names = std::collections::BTreeSet::new();
    for item in &file.items {
        let syn::Item::Mod(m) = item else { continue };
        if m.ident != "types" {
            continue;
        }
        for item in m.content.iter().flat_map(|(_, items)| items) {
            match item {
                syn::Item::Enum(e) => names.insert(e.ident.to_string()),
                syn::Item::Struct(s) => names.insert(s.ident.to_string()),
                syn::Item::Type(t) => names.insert(t.ident.to_string()),
                _ => false,
            };
        }
    }
    Ok(names)
}

/// Fails if progenitor still generated a type that should have been replaced by an open enum.
fn check_replacements(tokens: &TokenStream, open_enums: &[OpenEnum]) -> Result<()> {
    if open_enums.is_empty() {
        return Ok(());
    }
    let file: syn::File = syn::parse2(tokens.clone())
        .map_err(|e| format!("progenitor produced code that does not parse: {e}"))?;
    let types = file.items.iter().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == "types" => m.content.as_ref().map(|(_, items)| items),
        _ => None,
    });
    for item in types.into_iter().flatten() {
        let ident = match item {
            syn::Item::Enum(e) => &e.ident,
            syn::Item::Struct(s) => &s.ident,
            _ => continue,
        };
        if open_enums.iter().any(|e| ident == &e.name) {
            return Err(format!(
                "progenitor generated `types::{ident}` although it is an x-open-enum \
                 (the replacement did not apply)"
            ));
        }
    }
    Ok(())
}

/// Formats the tokens into the final file text.
pub fn format_file(tokens: TokenStream, spec_display: &str) -> Result<String> {
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("generated code does not parse: {e}"))?;
    let body = prettyplease::unparse(&file);
    let text = format!(
        "// @generated by cargo xtask generate from {spec_display}. DO NOT EDIT.\n\n{body}"
    );
    Ok(text.replace("\r\n", "\n"))
}

/// The whole generated file for an already loaded spec.
pub fn render(doc: Value, spec_display: &str) -> Result<String> {
    format_file(generate_tokens(doc)?, spec_display)
}

/// Runs `f`, turning a panic into an `Err` with its message and location, without printing
/// the default panic message or a backtrace. Panics of other threads meanwhile still reach the
/// previous hook.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T> {
    type Hook = Box<dyn Fn(&panic::PanicHookInfo<'_>) + Sync + Send + 'static>;
    // The hook is process-wide: one swap at a time.
    static SWAP: Mutex<()> = Mutex::new(());
    let _guard = SWAP.lock().unwrap_or_else(|e| e.into_inner());

    let captured: Arc<Mutex<Option<String>>> = Arc::default();
    let sink = Arc::clone(&captured);
    let previous: Arc<Hook> = Arc::new(panic::take_hook());
    let forward = Arc::clone(&previous);
    let me = thread::current().id();
    panic::set_hook(Box::new(move |info| {
        if thread::current().id() != me {
            return forward(info);
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        *sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{message}{location}"));
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    drop(panic::take_hook()); // ours, with its clone of `previous`
    match Arc::try_unwrap(previous) {
        Ok(hook) => panic::set_hook(hook),
        Err(shared) => panic::set_hook(Box::new(move |info| shared(info))),
    }
    result.map_err(|_| {
        captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "unknown panic".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MINI_SPEC as MINI, workspace_root};

    fn mini() -> Value {
        load_spec(&workspace_root().join(MINI)).unwrap()
    }

    #[test]
    fn preprocess_applies_the_vendor_extensions() {
        let mut doc = mini();
        let pre = preprocess(&mut doc).unwrap();
        assert_eq!(pre.skipped, vec!["GET /oauth/authorize".to_string()]);
        assert!(doc.pointer("/paths/~1oauth~1authorize").is_none());
        assert!(doc.pointer("/paths/~1oauth~1token/post").is_some());
        let names: Vec<&str> = pre.open_enums.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["ChargeState", "ResolutionType"]);
        assert_eq!(
            pre.open_enums[0].values,
            ["CHARGING", "FULLY_CHARGED", "NOT_CHARGING"]
        );
    }

    #[test]
    fn skip_keeps_the_other_operations_of_a_path() {
        let mut doc = parse_spec(
            "paths:\n  /a:\n    get: {x-codegen-skip: true}\n    post: {operationId: p}\n",
        )
        .unwrap();
        preprocess(&mut doc).unwrap();
        assert!(doc.pointer("/paths/~1a/get").is_none());
        assert!(doc.pointer("/paths/~1a/post").is_some());
    }

    #[test]
    fn misplaced_or_malformed_extensions_are_errors() {
        let mut doc = parse_spec(
            "paths: {}\ncomponents:\n  schemas:\n    A:\n      type: object\n      properties:\n        \
             s: {type: string, enum: [x], x-open-enum: true}\n",
        )
        .unwrap();
        let err = preprocess(&mut doc).unwrap_err();
        assert!(err.contains("/components/schemas/A/properties/s"), "{err}");

        let mut doc = parse_spec("paths:\n  /a:\n    get: {x-codegen-skip: yes please}\n").unwrap();
        assert!(
            preprocess(&mut doc)
                .unwrap_err()
                .contains("x-codegen-skip must be")
        );
    }

    #[test]
    fn missing_spec_says_where_it_looked() {
        let err = load_spec(&workspace_root().join("nope/missing.yaml")).unwrap_err();
        assert!(err.starts_with("spec not found at "), "{err}");
        assert!(err.ends_with("nope/missing.yaml"), "{err}");
    }

    #[test]
    fn generator_panics_become_errors() {
        // progenitor asserts that an operation has one success type; `default` counts as one.
        let doc = parse_spec(
            r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /a:
    get:
      operationId: a
      responses:
        "200": {description: ok, content: {application/json: {schema: {type: string}}}}
        default: {description: err, content: {application/json: {schema: {type: integer}}}}
"#,
        )
        .unwrap();
        let err = render(doc, "t.yaml").unwrap_err();
        assert!(err.starts_with("progenitor panicked: "), "{err}");
    }

    #[test]
    fn output_is_deterministic_and_has_the_header() {
        let a = render(mini(), MINI).unwrap();
        let b = render(mini(), MINI).unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with(
            "// @generated by cargo xtask generate from xtask/tests/fixtures/mini.yaml. DO NOT EDIT.\n"
        ));
        assert!(!a.contains('\r'));
        // The open enums replaced the closed ones everywhere.
        assert!(
            a.contains("pub state: crate::open_enums::ChargeState,"),
            "{a}"
        );
        assert!(!a.contains("pub enum ChargeState {\n        #[serde"));
    }

    /// The full generated output of the mini fixture: guards the generator settings.
    #[test]
    fn mini_fixture_output() {
        insta::assert_snapshot!("mini_generated_rs", render(mini(), MINI).unwrap());
    }
}

//! The operation table (`smartcar_api::ops`): one constant and one marker type per operation
//! of the spec, read from the *unprocessed* document (operations skipped by `x-codegen-skip`
//! are listed too, marked `generated: false`).
//!
//! Vendor extensions read here:
//! - `x-permissions: [scope, …]` on an operation: the permissions it needs when its security
//!   scheme cannot list them (OpenAPI 3.0 allows scopes only on OAuth 2.0 schemes; the v3
//!   commands use an application token).
//! - `x-idempotent: true` on a `POST`: sending it twice is the same as sending it once (the
//!   v2.0 batch read), so it may be retried like a `GET`.
//! - `x-batch: true` on a v2.0 vehicle read: the batch endpoint accepts it; its batch path is
//!   its path below `/v2.0/vehicles/{vehicle_id}` (`/` for the vehicle itself).

use std::collections::BTreeSet;

use heck::{ToShoutySnakeCase, ToUpperCamelCase};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::Result;

/// HTTP methods an operation may use here (the spec has no HEAD/OPTIONS/TRACE operations;
/// one would be an error).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Tags whose non-GET operations are commands.
const COMMAND_TAGS: [&str; 2] = ["commands", "v3-commands"];

/// One operation, as read from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub id: String,
    pub tag: String,
    pub summary: String,
    /// `Get`, `Post`… (the `Method` variant).
    pub method: &'static str,
    /// The `Host` variant.
    pub host: &'static str,
    pub path: String,
    pub path_params: Vec<String>,
    pub query_params: Vec<String>,
    /// The `Security` variant.
    pub security: &'static str,
    pub permissions: Vec<String>,
    pub command: bool,
    pub idempotent: bool,
    pub generated: bool,
    /// Component schema name of the request body.
    pub request: Option<String>,
    /// The success body's type relative to the crate root (`types::Odometer`).
    pub response: Option<String>,
    /// `x-batch`: the path relative to the vehicle a v2.0 batch request uses.
    pub batch_path: Option<String>,
}

/// Every operation of `doc`, by path (sorted), then by method in [`METHODS`] order.
pub fn collect(doc: &Value) -> Result<Vec<Op>> {
    // OpenAPI's default server is `/`; for Smartcar that is the v2.0 API host.
    let default_host = doc
        .pointer("/servers/0/url")
        .and_then(Value::as_str)
        .unwrap_or("https://api.smartcar.com");
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("the spec has no paths")?;
    let mut ops = Vec::new();
    let mut ids = BTreeSet::new();
    for (path, item) in paths {
        let Some(item_map) = item.as_object() else {
            continue;
        };
        let path_host = server_url(item);
        for method in METHODS {
            let Some(op) = item_map.get(method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_uppercase());
            let op = read_op(doc, path, method, item, op, path_host, default_host)
                .map_err(|e| format!("{at}: {e}"))?;
            if !ids.insert(op.id.clone()) {
                return Err(format!("{at}: operationId `{}` is used twice", op.id));
            }
            ops.push(op);
        }
    }
    Ok(ops)
}

fn server_url(v: &Value) -> Option<&str> {
    v.pointer("/servers/0/url").and_then(Value::as_str)
}

fn read_op(
    doc: &Value,
    path: &str,
    method: &str,
    item: &Value,
    op: &Value,
    path_host: Option<&str>,
    default_host: &str,
) -> Result<Op> {
    let id = op
        .get("operationId")
        .and_then(Value::as_str)
        .ok_or("no operationId")?
        .to_string();
    let tag = op
        .pointer("/tags/0")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let summary = op
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let method_variant = match method {
        "get" => "Get",
        "post" => "Post",
        "put" => "Put",
        "patch" => "Patch",
        "delete" => "Delete",
        other => {
            return Err(format!(
                "method {other} is not supported by the operation table"
            ));
        }
    };
    let host_url = server_url(op).or(path_host).unwrap_or(default_host);
    let host = host_variant(host_url)?;

    let path_params = template_params(path)?;
    let mut declared_path = BTreeSet::new();
    let mut query_params = Vec::new();
    let params = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for p in params {
        let p = resolve(doc, p)?;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a parameter without a name")?;
        match p.get("in").and_then(Value::as_str) {
            Some("path") => {
                declared_path.insert(name.to_string());
            }
            Some("query") => query_params.push(name.to_string()),
            _ => {}
        }
    }
    for p in &path_params {
        if !declared_path.contains(p) {
            return Err(format!(
                "path parameter `{p}` is not declared in `parameters`"
            ));
        }
    }
    if let Some(extra) = declared_path.iter().find(|p| !path_params.contains(p)) {
        return Err(format!(
            "parameter `{extra}` is declared `in: path` but not in the path"
        ));
    }

    let security = op.get("security").or_else(|| doc.get("security"));
    let (security, mut permissions) = match security.and_then(Value::as_array) {
        None => ("None", Vec::new()),
        Some(list) if list.is_empty() => ("None", Vec::new()),
        Some(list) if list.len() > 1 => {
            return Err("more than one security alternative (the table holds one)".into());
        }
        Some(list) => {
            let req = list[0]
                .as_object()
                .ok_or("a security requirement is not a map")?;
            if req.len() != 1 {
                return Err("a security requirement names more than one scheme".into());
            }
            let (scheme, scopes) = req.iter().next().expect("one entry");
            let variant = match scheme.as_str() {
                "smartcarConnect" => "UserToken",
                "applicationToken" => "ApplicationToken",
                "clientBasic" => "ClientBasic",
                "managementBasic" => "ManagementBasic",
                "managementBearer" => "ManagementBearer",
                other => return Err(format!("unknown security scheme `{other}`")),
            };
            let scopes = strings(scopes).ok_or("security scopes are not a list of strings")?;
            (variant, scopes)
        }
    };
    if let Some(extra) = op.get("x-permissions") {
        if !permissions.is_empty() {
            return Err("x-permissions next to security scopes: list them in one place".into());
        }
        permissions = strings(extra).ok_or("x-permissions must be a list of strings")?;
    }

    let idempotent_mark = match op.get("x-idempotent") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => return Err(format!("x-idempotent must be true or false, found {other}")),
    };
    let command = COMMAND_TAGS.contains(&tag.as_str()) && method != "get";
    if command && idempotent_mark {
        return Err("a command cannot be x-idempotent".into());
    }
    let idempotent = !command && (matches!(method, "get" | "put" | "delete") || idempotent_mark);

    let generated = !matches!(op.get("x-codegen-skip"), Some(Value::Bool(true)));
    let request = match op.get("requestBody") {
        None => None,
        Some(body) => {
            let body = resolve(doc, body)?;
            let content = body
                .get("content")
                .and_then(Value::as_object)
                .ok_or("requestBody without content")?;
            let mut names = content
                .values()
                .map(|media| media.get("schema").and_then(ref_name));
            let first = names.next().flatten().ok_or(
                "the request body's schema must be a $ref to a component schema (name its type)",
            )?;
            Some(first.to_string())
        }
    };
    let response = if generated {
        success_type(doc, op)?
    } else {
        None
    };
    let batch_path = match op.get("x-batch") {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => {
            const VEHICLE: &str = "/v2.0/vehicles/{vehicle_id}";
            let rest = path.strip_prefix(VEHICLE).filter(|rest| {
                method == "get"
                    && path_params.len() == 1
                    && (rest.is_empty() || rest.starts_with('/'))
            });
            let rest = rest.ok_or(format!(
                "x-batch is for GET reads below {VEHICLE} with no other path parameter"
            ))?;
            Some(if rest.is_empty() {
                "/".to_string()
            } else {
                rest.to_string()
            })
        }
        Some(other) => return Err(format!("x-batch must be true or false, found {other}")),
    };
    Ok(Op {
        id,
        tag,
        summary,
        method: method_variant,
        host,
        path: path.to_string(),
        path_params,
        query_params,
        security,
        permissions,
        command,
        idempotent,
        generated,
        request,
        response,
        batch_path,
    })
}

fn host_variant(url: &str) -> Result<&'static str> {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url)
        .trim_end_matches('/');
    Ok(match host {
        "connect.smartcar.com" => "Connect",
        "auth.smartcar.com" => "Auth",
        "iam.smartcar.com" => "Iam",
        "api.smartcar.com" => "Api",
        "management.smartcar.com" => "Management",
        "vehicle.api.smartcar.com" => "Vehicle",
        "management.api.smartcar.com" => "ManagementV3",
        "compatibility.api.smartcar.com" => "Compatibility",
        _ => {
            return Err(format!(
                "server `{url}` is not one of Smartcar's known hosts"
            ));
        }
    })
}

/// `{name}` parameters of a path template, in order.
fn template_params(path: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in path `{path}`"))?;
        let name = &rest[start + 1..start + end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Err(format!("path parameter `{name}` must be snake_case ASCII"));
        }
        out.push(name.to_string());
        rest = &rest[start + end + 1..];
    }
    Ok(out)
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Follows a local `$ref` (one level is all the spec uses).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> Result<&'a Value> {
    match v.get("$ref").and_then(Value::as_str) {
        None => Ok(v),
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .ok_or_else(|| format!("only local $refs are supported, found `{r}`"))?;
            doc.pointer(pointer)
                .ok_or_else(|| format!("dangling $ref `{r}`"))
        }
    }
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)?
        .strip_prefix("#/components/schemas/")
}

/// The Rust type of the JSON success body (every 2xx response must agree), or `None`.
fn success_type(doc: &Value, op: &Value) -> Result<Option<String>> {
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or("no responses")?;
    let mut found: Option<Option<String>> = None;
    for (status, response) in responses {
        if !status.starts_with('2') {
            continue;
        }
        let response = resolve(doc, response)?;
        let ty = match response.pointer("/content/application~1json/schema") {
            None => None,
            Some(schema) => Some(rust_type(schema).ok_or_else(|| {
                format!(
                    "the {status} body's schema must be a $ref to a component schema, a \
                     primitive, or an array of those (name its type)"
                )
            })?),
        };
        match &found {
            None => found = Some(ty),
            Some(previous) if *previous == ty => {}
            Some(previous) => {
                return Err(format!(
                    "the success responses have different bodies ({previous:?} and {ty:?})"
                ));
            }
        }
    }
    Ok(found.flatten())
}

fn rust_type(schema: &Value) -> Option<String> {
    if let Some(name) = ref_name(schema) {
        return Some(format!("types::{}", name.to_upper_camel_case()));
    }
    match schema.get("type").and_then(Value::as_str)? {
        "array" => Some(format!("Vec<{}>", rust_type(schema.get("items")?)?)),
        "string" => Some("String".into()),
        "boolean" => Some("bool".into()),
        "integer" => Some("i64".into()),
        "number" => Some("f64".into()),
        _ => None,
    }
}

/// Fails when a type named by the table is not among `known` (the item names of the
/// generated `types` module), so a renamed schema cannot leave a dangling name.
pub fn check_types(ops: &[Op], known: &BTreeSet<String>) -> Result<()> {
    for op in ops {
        let names =
            op.request
                .iter()
                .map(|r| r.to_upper_camel_case())
                .chain(op.response.iter().map(|r| {
                    r.trim_start_matches("Vec<")
                        .trim_end_matches('>')
                        .trim_start_matches("types::")
                        .to_string()
                }));
        for name in names {
            let primitive = ["String", "bool", "i64", "f64"].contains(&name.as_str());
            if !primitive && !known.contains(&name) {
                return Err(format!(
                    "operation `{}` names `types::{name}`, which progenitor did not generate",
                    op.id
                ));
            }
        }
    }
    Ok(())
}

/// The `pub mod ops { … }` item.
pub fn emit(ops: &[Op]) -> TokenStream {
    let mut items = Vec::new();
    let mut all = Vec::new();
    let mut markers = Vec::new();
    for op in ops {
        let konst = format_ident!("{}", op.id.to_shouty_snake_case());
        let marker = format_ident!("{}", op.id.to_upper_camel_case());
        let id = &op.id;
        let tag = &op.tag;
        let method = format_ident!("{}", op.method);
        let host = format_ident!("{}", op.host);
        let path = &op.path;
        let path_params = &op.path_params;
        let query_params = &op.query_params;
        let security = format_ident!("{}", op.security);
        let permissions = &op.permissions;
        let command = op.command;
        let idempotent = op.idempotent;
        let generated = op.generated;
        let request = option_str(op.request.as_deref().map(|r| r.to_upper_camel_case()));
        let response = option_str(op.response.clone());
        let batch_path = option_str(op.batch_path.clone());
        let line = format!("`{} {}`", op.method.to_uppercase(), op.path);
        let doc = if op.summary.is_empty() {
            format!("{line} (`{id}`).")
        } else {
            format!("{line} (`{id}`): {}.", op.summary.trim_end_matches('.'))
        };
        let marker_doc = format!("[`{konst}`] at the type level.");
        let request_ty = type_tokens(
            op.request
                .as_deref()
                .map(|r| format!("types::{}", r.to_upper_camel_case()))
                .as_deref(),
        );
        let response_ty = type_tokens(op.response.as_deref());
        let args: Vec<_> = op
            .path_params
            .iter()
            .map(|p| format_ident!("{}", p))
            .collect();
        let mut pattern = String::new();
        let mut rest = op.path.as_str();
        while let Some(start) = rest.find('{') {
            let end = start + rest[start..].find('}').expect("checked by template_params");
            pattern.push_str(&rest[..start]);
            pattern.push_str("{}");
            rest = &rest[end + 1..];
        }
        pattern.push_str(rest);
        let path_fn = if args.is_empty() {
            quote! {
                /// The operation's path (it has no parameters).
                pub fn path() -> String {
                    #path.to_string()
                }
            }
        } else {
            let path_doc = format!(
                "The operation's path with {} filled in, each percent-encoded as a path segment.",
                op.path_params
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            quote! {
                #[doc = #path_doc]
                pub fn path(#(#args: &str),*) -> String {
                    format!(#pattern, #(crate::op::encode_segment(#args)),*)
                }
            }
        };
        items.push(quote! {
            #[doc = #doc]
            pub const #konst: Operation = Operation {
                id: #id,
                tag: #tag,
                method: Method::#method,
                host: Host::#host,
                path: #path,
                path_params: &[#(#path_params),*],
                query_params: &[#(#query_params),*],
                security: Security::#security,
                permissions: &[#(#permissions),*],
                command: #command,
                idempotent: #idempotent,
                generated: #generated,
                request: #request,
                response: #response,
                batch_path: #batch_path,
            };
            #[doc = #marker_doc]
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            pub struct #marker;
            impl #marker {
                #path_fn
            }
            impl Endpoint for #marker {
                const OP: &'static Operation = &#konst;
                type Request = #request_ty;
                type Response = #response_ty;
            }
        });
        all.push(konst);
        markers.push(marker);
    }
    quote! {
        /// Calls `$callback! { Marker, Marker, … }` with the marker type of every operation of
        /// [`ops`](crate::ops) (in `ops::ALL` order), for code that must do something per
        /// operation *at the type level*, such as decoding each one's `Endpoint::Response`:
        ///
        /// ```
        /// use smartcar_api::op::Endpoint;
        /// use smartcar_api::ops;
        ///
        /// macro_rules! count {
        ///     ($($marker:ident),*) => { [$(<ops::$marker as Endpoint>::OP.id),*].len() };
        /// }
        /// assert_eq!(smartcar_api::for_each_endpoint!(count), ops::ALL.len());
        /// ```
        #[macro_export]
        macro_rules! for_each_endpoint {
            ($callback:ident) => {
                $callback! { #(#markers),* }
            };
        }

        /// The operation table: one [`Operation`](crate::op::Operation) constant and one
        /// [`Endpoint`](crate::op::Endpoint) marker type per operation of the spec, and
        /// [`ALL`](crate::ops::ALL). See [`crate::op`].
        pub mod ops {
            use crate::op::{Endpoint, Host, Method, Operation, Security};
            use super::types;
            #(#items)*
            /// Every operation, by path, then method.
            pub const ALL: &[Operation] = &[#(#all),*];
        }
    }
}

fn option_str(v: Option<String>) -> TokenStream {
    match v {
        Some(s) => quote!(Some(#s)),
        None => quote!(None),
    }
}

fn type_tokens(ty: Option<&str>) -> TokenStream {
    match ty {
        Some(t) => t.parse().expect("a type path built above"),
        None => quote!(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::parse_spec;

    fn one(yaml: &str) -> Result<Vec<Op>> {
        collect(&parse_spec(yaml).unwrap())
    }

    const HEAD: &str = "servers: [{url: https://api.smartcar.com}]\n";

    #[test]
    fn reads_host_params_security_and_kind() {
        let ops = one(&format!(
            "{HEAD}paths:
  /v3/vehicles/{{vehicle_id}}/commands/security/lock:
    servers: [{{url: https://vehicle.api.smartcar.com}}]
    parameters: [{{name: vehicle_id, in: path, required: true}}]
    post:
      operationId: lock_v3
      tags: [v3-commands]
      security: [{{applicationToken: []}}]
      x-permissions: [control_security]
      responses: {{'204': {{description: ok}}}}
  /v2.0/vehicles/{{vehicle_id}}/batch:
    post:
      operationId: batch
      tags: [batch]
      x-idempotent: true
      parameters: [{{name: vehicle_id, in: path}}, {{name: flags, in: query}}]
      security: [{{smartcarConnect: [read_odometer]}}]
      requestBody: {{content: {{application/json: {{schema: {{$ref: '#/components/schemas/BatchRequest'}}}}}}}}
      responses:
        '200': {{description: ok, content: {{application/json: {{schema: {{type: array, items: {{$ref: '#/components/schemas/batch_item'}}}}}}}}}}
"
        ))
        .unwrap();
        assert_eq!(ops.len(), 2);
        let find = |id: &str| ops.iter().find(|o| o.id == id).unwrap();
        let lock = find("lock_v3");
        assert_eq!(
            (lock.host, lock.method, lock.security),
            ("Vehicle", "Post", "ApplicationToken")
        );
        assert_eq!(lock.permissions, ["control_security"]);
        assert!(lock.command && !lock.idempotent);
        assert_eq!(lock.response, None);
        let batch = find("batch");
        assert_eq!(batch.host, "Api");
        assert_eq!(batch.path_params, ["vehicle_id"]);
        assert_eq!(batch.query_params, ["flags"]);
        assert!(!batch.command && batch.idempotent);
        assert_eq!(batch.request.as_deref(), Some("BatchRequest"));
        assert_eq!(batch.response.as_deref(), Some("Vec<types::BatchItem>"));
    }

    #[test]
    fn mistakes_are_errors_naming_the_operation() {
        let cases = [
            (
                "/a/{id}:\n    get: {operationId: a, tags: [t], responses: {}}",
                "not declared",
            ),
            (
                "/a:\n    servers: [{url: https://example.com}]\n    get: {operationId: a, tags: [t], responses: {}}",
                "known hosts",
            ),
            (
                "/a:\n    post: {operationId: a, tags: [commands], x-idempotent: true, responses: {}}",
                "cannot be x-idempotent",
            ),
            (
                "/a:\n    get: {operationId: a, tags: [t], security: [{nope: []}], responses: {}}",
                "unknown security scheme",
            ),
            (
                "/a:\n    get:\n      operationId: a\n      tags: [t]\n      responses:\n        '200':\n          content:\n            application/json:\n              schema: {type: object}",
                "$ref to a component schema",
            ),
            (
                "/a:\n    get: {operationId: a, tags: [t], responses: {}}\n  /b:\n    get: {operationId: a, tags: [t], responses: {}}",
                "used twice",
            ),
            (
                "/v3/a:\n    get: {operationId: a, tags: [t], x-batch: true, responses: {}}",
                "x-batch is for GET reads",
            ),
        ];
        for (paths, expected) in cases {
            let err = one(&format!("{HEAD}paths:\n  {paths}\n")).unwrap_err();
            assert!(err.contains(expected), "{paths}\n→ {err}");
            assert!(
                err.starts_with("GET /") || err.starts_with("POST /"),
                "{err}"
            );
        }
    }

    #[test]
    fn template_params_in_order() {
        assert_eq!(
            template_params("/v/{vehicle_id}/w/{webhook_id}").unwrap(),
            ["vehicle_id", "webhook_id"]
        );
        assert!(template_params("/v/{Bad}").is_err());
        assert!(template_params("/v/{open").is_err());
    }
}

//! The API surface of a generated client, as reviewable text: every operation (builder method,
//! tag, HTTP method, path, parameters, body, response and error types, handled statuses) and
//! every generated type (fields and their types, enum variants, serde renames), found by walking
//! the syn AST of the generator's output.
//!
//! Snapshotted with insta: a change of one field in the spec shows up as a small diff of this
//! text, whereas the generated file changes in many places at once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Attribute, Fields, ImplItem, Item, ItemMod, Type};

/// Renders the surface of a generated file.
pub fn render(file: &syn::File) -> String {
    let mut out = String::new();
    render_operations(file, &mut out);
    if let Some(types) = module(&file.items, "types") {
        out.push_str("\n# types\n");
        render_types(types, &mut out);
    }
    if let Some(open) = module(&file.items, crate::open_enums::MODULE) {
        out.push_str("\n# open enums (any other value decodes as Unknown(String))\n");
        render_open_enums(open, &mut out);
    }
    if let Some(ops) = module(&file.items, "ops") {
        out.push_str("\n# operation table (smartcar_api::ops)\n");
        render_op_table(ops, &mut out);
    }
    out
}

/// One line per `Operation` constant: its name, then every field as written.
fn render_op_table(items: &[Item], out: &mut String) {
    for item in items {
        let Item::Const(c) = item else { continue };
        let syn::Expr::Struct(fields) = c.expr.as_ref() else {
            let _ = writeln!(out, "{} = {}", c.ident, compact(&c.expr.to_token_stream()));
            continue;
        };
        let _ = write!(out, "{}:", c.ident);
        for field in &fields.fields {
            let name = field.member.to_token_stream().to_string();
            let value = compact(&field.expr.to_token_stream()).replace("& [", "[");
            let _ = write!(out, " {name}={value}");
        }
        out.push('\n');
    }
}

fn module<'a>(items: &'a [Item], name: &str) -> Option<&'a [Item]> {
    items.iter().find_map(|item| match item {
        Item::Mod(ItemMod {
            ident,
            content: Some((_, items)),
            ..
        }) if ident == name => Some(items.as_slice()),
        _ => None,
    })
}

/// `ClientVehiclesExt` → `vehicles`.
fn tag_of(trait_name: &str) -> String {
    let inner = trait_name
        .strip_prefix("Client")
        .and_then(|s| s.strip_suffix("Ext"))
        .unwrap_or(trait_name);
    heck::ToSnakeCase::to_snake_case(inner)
}

fn render_operations(file: &syn::File, out: &mut String) {
    // Builder type name → (tag, client method name), from the per-tag traits.
    let mut methods: BTreeMap<String, (String, String)> = BTreeMap::new();
    for item in &file.items {
        let Item::Trait(t) = item else { continue };
        for trait_item in &t.items {
            let syn::TraitItem::Fn(f) = trait_item else {
                continue;
            };
            if let syn::ReturnType::Type(_, ty) = &f.sig.output {
                methods.insert(
                    last_segment(ty),
                    (tag_of(&t.ident.to_string()), f.sig.ident.to_string()),
                );
            }
        }
    }

    let builders = module(&file.items, "builder").unwrap_or(&[]);
    let mut ops: Vec<(String, String)> = Vec::new(); // (sort key, text)
    for item in builders {
        let Item::Struct(s) = item else { continue };
        let Some(send) = builders.iter().find_map(|i| send_fn(i, &s.ident)) else {
            continue;
        };
        let name = s.ident.to_string();
        let (tag, method) = methods
            .get(&name)
            .cloned()
            .unwrap_or_else(|| ("?".into(), format!("? ({name})")));
        let doc = docs(&send.attrs);
        let (verb, path) = parse_sends(&doc).unwrap_or(("?".into(), "?".into()));
        let mut text = format!("{method} [{tag}]: {verb} {path}\n");

        let body_tokens = send.block.to_token_stream().to_string();
        if let Fields::Named(fields) = &s.fields {
            for field in &fields.named {
                let fname = field
                    .ident
                    .as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                if fname == "client" {
                    continue;
                }
                let inner = first_generic(&field.ty)
                    .map(type_str)
                    .unwrap_or_else(|| type_str(&field.ty));
                if fname == "body" {
                    let inner = inner.strip_prefix("builder::").unwrap_or(&inner);
                    let encoding = if body_tokens.contains("form_urlencoded") {
                        "form"
                    } else if body_tokens.contains(". json (") {
                        "json"
                    } else {
                        "other"
                    };
                    let _ = writeln!(text, "  body ({encoding}): {inner}");
                } else {
                    let _ = writeln!(text, "  param {fname}: {inner}");
                }
            }
        }
        if let syn::ReturnType::Type(_, ty) = &send.sig.output {
            let mut args = generic_args(ty).into_iter();
            if let Some(ok) = args.next() {
                let ok = first_generic(ok)
                    .map(type_str)
                    .unwrap_or_else(|| type_str(ok));
                let _ = writeln!(text, "  ok: {ok}");
            }
            if let Some(err) = args.next() {
                let err = first_generic(err)
                    .map(type_str)
                    .unwrap_or_else(|| "()".into());
                let _ = writeln!(text, "  error: {err}");
            }
        }
        let _ = writeln!(
            text,
            "  statuses: {}",
            statuses(&send.block.to_token_stream()).join(", ")
        );
        ops.push((format!("{tag} {method}"), text));
    }
    ops.sort();
    let _ = writeln!(out, "# operations ({})", ops.len());
    for (_, text) in ops {
        out.push_str(&text);
    }
}

/// The `send` method of the builder named `ident`, if `item` is its inherent impl.
fn send_fn<'a>(item: &'a Item, ident: &syn::Ident) -> Option<&'a syn::ImplItemFn> {
    let Item::Impl(imp) = item else { return None };
    if imp.trait_.is_some() || *ident != last_segment(&imp.self_ty) {
        return None;
    }
    imp.items.iter().find_map(|i| match i {
        ImplItem::Fn(f) if f.sig.ident == "send" => Some(f),
        _ => None,
    })
}

/// "Sends a `GET` request to `/a/{b}`" → ("GET", "/a/{b}").
fn parse_sends(doc: &str) -> Option<(String, String)> {
    let rest = doc.split("Sends a `").nth(1)?;
    let (verb, rest) = rest.split_once('`')?;
    let path = rest.split('`').nth(1)?;
    Some((verb.to_string(), path.to_string()))
}

/// The status codes and ranges matched in `send` (`200`, `400..=499`, ...), in order.
fn statuses(tokens: &TokenStream) -> Vec<String> {
    fn flatten(tokens: TokenStream, out: &mut Vec<TokenTree>) {
        for tt in tokens {
            match tt {
                TokenTree::Group(g) => flatten(g.stream(), out),
                other => out.push(other),
            }
        }
    }
    let mut flat = Vec::new();
    flatten(tokens.clone(), &mut flat);
    let code = |tt: &TokenTree| match tt {
        TokenTree::Literal(l) => l.to_string().strip_suffix("u16").map(str::to_string),
        _ => None,
    };
    let punct = |tt: Option<&TokenTree>, c: char| matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c);
    let mut found = Vec::new();
    let mut i = 0;
    while i < flat.len() {
        if let Some(start) = code(&flat[i]) {
            if punct(flat.get(i + 1), '.')
                && punct(flat.get(i + 2), '.')
                && punct(flat.get(i + 3), '=')
                && let Some(end) = flat.get(i + 4).and_then(code)
            {
                found.push(format!("{start}..={end}"));
                i += 5;
                continue;
            }
            found.push(start);
        }
        i += 1;
    }
    found
}

fn render_types(items: &[Item], out: &mut String) {
    for item in items {
        match item {
            Item::Struct(s) => {
                let attrs = serde_attrs(&s.attrs);
                match &s.fields {
                    Fields::Named(fields) => {
                        let _ = writeln!(out, "struct {}{attrs}", s.ident);
                        for field in &fields.named {
                            let name = field
                                .ident
                                .as_ref()
                                .map(|i| i.to_string())
                                .unwrap_or_default();
                            let _ = writeln!(
                                out,
                                "  {name}: {}{}",
                                type_str(&field.ty),
                                serde_attrs(&field.attrs)
                            );
                        }
                    }
                    Fields::Unnamed(fields) => {
                        let inner: Vec<String> =
                            fields.unnamed.iter().map(|f| type_str(&f.ty)).collect();
                        let _ = writeln!(out, "struct {}({}){attrs}", s.ident, inner.join(", "));
                    }
                    Fields::Unit => {
                        let _ = writeln!(out, "struct {}{attrs}", s.ident);
                    }
                }
            }
            Item::Enum(e) => {
                let _ = writeln!(out, "enum {}{}", e.ident, serde_attrs(&e.attrs));
                for v in &e.variants {
                    let attrs = serde_attrs(&v.attrs);
                    match &v.fields {
                        Fields::Unit => {
                            let _ = writeln!(out, "  {}{attrs}", v.ident);
                        }
                        Fields::Unnamed(f) => {
                            let inner: Vec<String> =
                                f.unnamed.iter().map(|f| type_str(&f.ty)).collect();
                            let _ = writeln!(out, "  {}({}){attrs}", v.ident, inner.join(", "));
                        }
                        Fields::Named(f) => {
                            let inner: Vec<String> = f
                                .named
                                .iter()
                                .map(|f| {
                                    let name =
                                        f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
                                    format!("{name}: {}{}", type_str(&f.ty), serde_attrs(&f.attrs))
                                })
                                .collect();
                            let _ =
                                writeln!(out, "  {} {{ {} }}{attrs}", v.ident, inner.join(", "));
                        }
                    }
                }
            }
            Item::Type(t) => {
                let _ = writeln!(out, "type {} = {}", t.ident, type_str(&t.ty));
            }
            _ => {}
        }
    }
}

fn render_open_enums(items: &[Item], out: &mut String) {
    for item in items {
        let Item::Enum(e) = item else { continue };
        // KNOWN lists the wire values in variant order.
        let known: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Impl(imp)
                    if imp.trait_.is_none() && e.ident == last_segment(&imp.self_ty) =>
                {
                    Some(imp)
                }
                _ => None,
            })
            .flat_map(|imp| imp.items.iter())
            .filter_map(|i| match i {
                ImplItem::Const(c) if c.ident == "KNOWN" => {
                    Some(string_literals(&c.expr.to_token_stream()))
                }
                _ => None,
            })
            .flatten()
            .collect();
        let _ = writeln!(out, "open enum {}", e.ident);
        let variants = e.variants.iter().filter(|v| v.ident != "Unknown");
        for (v, value) in variants.zip(known.iter().map(Some).chain(std::iter::repeat(None))) {
            let value = value
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "?".into());
            let _ = writeln!(out, "  {} = {value}", v.ident);
        }
    }
}

fn string_literals(tokens: &TokenStream) -> Vec<String> {
    let mut found = Vec::new();
    for tt in tokens.clone() {
        match tt {
            TokenTree::Group(g) => found.extend(string_literals(&g.stream())),
            TokenTree::Literal(l) => {
                if let Ok(syn::Lit::Str(s)) = syn::parse_str::<syn::Lit>(&l.to_string()) {
                    found.push(s.value());
                }
            }
            _ => {}
        }
    }
    found
}

/// The doc comment text of `attrs`.
fn docs(attrs: &[Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The serde attributes (they define the wire format), as ` [rename="x", default]`; paths in
/// values are cut to their last two segments (`Option::is_none`).
fn serde_attrs(attrs: &[Attribute]) -> String {
    let mut shown = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let key = compact(&meta.path.to_token_stream());
            if meta.input.peek(syn::Token![=]) {
                let value: syn::Expr = meta.value()?.parse()?;
                let value = match &value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => {
                        let text = s.value();
                        let parts: Vec<&str> = text.split("::").filter(|p| !p.is_empty()).collect();
                        let short = if parts.len() > 2 {
                            parts[parts.len() - 2..].join("::")
                        } else {
                            text.clone()
                        };
                        format!("{short:?}")
                    }
                    other => compact(&other.to_token_stream()),
                };
                shown.push(format!("{key}={value}"));
            } else {
                shown.push(key);
            }
            Ok(())
        });
    }
    if shown.is_empty() {
        String::new()
    } else {
        format!(" [{}]", shown.join(", "))
    }
}

fn last_segment(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        Type::Reference(r) => last_segment(&r.elem),
        _ => String::new(),
    }
}

fn generic_args(ty: &Type) -> Vec<&Type> {
    let Type::Path(p) = ty else { return Vec::new() };
    let Some(last) = p.path.segments.last() else {
        return Vec::new();
    };
    match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn first_generic(ty: &Type) -> Option<&Type> {
    generic_args(ty).into_iter().next()
}

/// A readable type: std paths shortened to their last segment, `crate::`/`super::`/`types::`
/// prefixes dropped.
fn type_str(ty: &Type) -> String {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let segments: Vec<&syn::PathSegment> = p.path.segments.iter().collect();
            let first = segments
                .first()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            let skip = if matches!(first.as_str(), "std" | "core" | "alloc") {
                segments.len().saturating_sub(1)
            } else {
                segments
                    .iter()
                    .take_while(|s| {
                        matches!(
                            s.ident.to_string().as_str(),
                            "crate" | "super" | "types" | "self"
                        )
                    })
                    .count()
                    .min(segments.len().saturating_sub(1))
            };
            segments[skip..]
                .iter()
                .map(|s| {
                    let args = match &s.arguments {
                        syn::PathArguments::AngleBracketed(a) => {
                            let inner: Vec<String> = a
                                .args
                                .iter()
                                .map(|arg| match arg {
                                    syn::GenericArgument::Type(t) => type_str(t),
                                    other => compact(&other.to_token_stream()),
                                })
                                .collect();
                            format!("<{}>", inner.join(", "))
                        }
                        _ => String::new(),
                    };
                    format!("{}{args}", s.ident)
                })
                .collect::<Vec<_>>()
                .join("::")
        }
        Type::Reference(r) => format!("&{}", type_str(&r.elem)),
        Type::Slice(s) => format!("[{}]", type_str(&s.elem)),
        Type::Array(a) => format!(
            "[{}; {}]",
            type_str(&a.elem),
            compact(&a.len.to_token_stream())
        ),
        Type::Tuple(t) => format!(
            "({})",
            t.elems.iter().map(type_str).collect::<Vec<_>>().join(", ")
        ),
        other => compact(&other.to_token_stream()),
    }
}

/// Token text without the spaces proc-macro2 puts between every token.
fn compact(tokens: &TokenStream) -> String {
    tokens
        .to_string()
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace("< ", "<")
        .replace(" ,", ",")
        .replace("Some (", "Some(")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_SPEC, MINI_SPEC as MINI, codegen, workspace_root};

    fn surface_of(spec: &str) -> String {
        let doc = codegen::load_spec(&workspace_root().join(spec)).unwrap();
        let tokens = codegen::generate_tokens(doc).unwrap();
        render(&syn::parse2(tokens).unwrap())
    }

    /// The surface of the real spec. A spec change shows up here as a reviewable diff: accept
    /// it with `INSTA_UPDATE=always cargo test -p xtask` (or `cargo insta review`).
    #[test]
    fn api_surface() {
        insta::assert_snapshot!("api_surface", surface_of(DEFAULT_SPEC));
    }

    /// The surface of the mini fixture (guards this renderer whatever the real spec holds).
    #[test]
    fn api_surface_of_the_mini_fixture() {
        insta::assert_snapshot!("api_surface_mini", surface_of(MINI));
    }

    #[test]
    fn a_changed_field_changes_the_surface() {
        let path = workspace_root().join(MINI);
        let text = std::fs::read_to_string(&path).unwrap();
        let changed = text.replace(
            "        isPluggedIn:\n          type: boolean",
            "        isPluggedIn:\n          type: string",
        );
        assert_ne!(text, changed);
        let render_text = |t: &str| {
            let tokens = codegen::generate_tokens(codegen::parse_spec(t).unwrap()).unwrap();
            render(&syn::parse2(tokens).unwrap())
        };
        let (before, after) = (render_text(&text), render_text(&changed));
        assert!(
            before.contains("  is_plugged_in: bool [rename=\"isPluggedIn\"]\n"),
            "{before}"
        );
        assert!(
            after.contains("  is_plugged_in: String [rename=\"isPluggedIn\"]\n"),
            "{after}"
        );
    }

    #[test]
    fn status_ranges_are_read_from_tokens() {
        let tokens: TokenStream = "match s { 200u16 => a, 400u16..=499u16 => b, _ => c }"
            .parse()
            .unwrap();
        assert_eq!(statuses(&tokens), ["200", "400..=499"]);
    }

    #[test]
    fn types_are_shortened() {
        let ty: Type = syn::parse_str(
            "::std::option::Option<::std::vec::Vec<crate::open_enums::ChargeState>>",
        )
        .unwrap();
        assert_eq!(type_str(&ty), "Option<Vec<open_enums::ChargeState>>");
        let ty: Type = syn::parse_str("types::builder::TokenRequest").unwrap();
        assert_eq!(type_str(&ty), "builder::TokenRequest");
    }
}

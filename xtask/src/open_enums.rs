//! Open enums: string enums that must accept values the spec does not list.
//!
//! A component schema `components.schemas.X` with `type: string`, `enum: [...]` and
//! `x-open-enum: true` does not become a closed typify enum (an unknown value from the server
//! would fail the decoding of the whole response). The xtask emits `pub mod open_enums { pub
//! enum X { ..., Unknown(String) } }` into the generated file instead, and tells progenitor to
//! use `crate::open_enums::X` wherever the spec references `X`.
//!
//! Variant names: each listed value becomes an UpperCamelCase identifier (see
//! [`variant_names`]); the catch-all is always `Unknown(String)`.

use heck::ToUpperCamelCase;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use std::collections::BTreeSet;

use crate::Result;

/// Name of the module the enums are emitted into (inside the generated file).
pub const MODULE: &str = "open_enums";

/// One `x-open-enum` schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEnum {
    /// The component name, which is also the Rust type name (checked by [`OpenEnum::new`]).
    pub name: String,
    /// The schema's `description`, if any.
    pub description: Option<String>,
    /// The listed values, in spec order, without duplicates.
    pub values: Vec<String>,
}

impl OpenEnum {
    /// Validates an `x-open-enum` schema. `pointer` locates it in the spec for messages.
    pub fn new(
        name: &str,
        schema: &serde_json::Map<String, serde_json::Value>,
        pointer: &str,
    ) -> Result<Self> {
        // typify looks replacements up by the PascalCase of the component name; requiring the
        // name to be its own UpperCamelCase form makes that lookup exact (and the Rust name
        // equal to the spec name).
        if name.to_upper_camel_case() != name || syn::parse_str::<Ident>(name).is_err() {
            return Err(format!(
                "{pointer}: an x-open-enum schema must be named in UpperCamelCase (a valid Rust \
                 type name such as `{}`), found `{name}`",
                name.to_upper_camel_case()
            ));
        }
        if schema.get("type").and_then(|t| t.as_str()) != Some("string") {
            return Err(format!(
                "{pointer}: an x-open-enum schema needs `type: string`"
            ));
        }
        if schema.get("nullable").and_then(|n| n.as_bool()) == Some(true) {
            return Err(format!(
                "{pointer}: an x-open-enum schema must not be `nullable`; make the referencing \
                 property nullable instead (`nullable: true` + `allOf: [$ref]`)"
            ));
        }
        let list = schema
            .get("enum")
            .and_then(|e| e.as_array())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                format!("{pointer}: an x-open-enum schema needs a non-empty `enum` list")
            })?;
        let mut values = Vec::with_capacity(list.len());
        for value in list {
            let value = value.as_str().ok_or_else(|| {
                format!("{pointer}: x-open-enum values must be strings, found `{value}`")
            })?;
            if !values.iter().any(|v| v == value) {
                values.push(value.to_string());
            }
        }
        let description = schema
            .get("description")
            .and_then(|d| d.as_str())
            .map(str::to_string);
        Ok(Self {
            name: name.to_string(),
            description,
            values,
        })
    }

    /// The path progenitor is told to use for this type.
    pub fn rust_path(&self) -> String {
        format!("crate::{MODULE}::{}", self.name)
    }
}

/// Variant identifiers for `values`, in order: distinct, valid, never `Unknown`, deterministic.
///
/// - Each value is split into words at every character that is not an ASCII letter or digit
///   (`"kilowatt-hours"`, `"km/h"`, `"FULLY_CHARGED"`) and at case changes, then written in
///   UpperCamelCase (`KilowattHours`, `KmH`, `FullyCharged`). A non-ASCII letter or digit
///   becomes its own word `U<hex code point>` so that it is not lost.
/// - An empty result becomes `Empty`; one starting with a digit gets a `V` prefix (`"4wd"` →
///   `V4wd`); `Unknown` and `Self` (reserved) get a `Value` suffix.
/// - A name already taken by an earlier value gets the smallest suffix 2, 3, … that is free
///   (`"km/h"`, `"km_h"` → `KmH`, `KmH2`).
pub fn variant_names(values: &[String]) -> Vec<String> {
    let mut taken: BTreeSet<String> = BTreeSet::from(["Unknown".to_string()]);
    values
        .iter()
        .map(|value| {
            let base = base_variant_name(value);
            let mut name = base.clone();
            let mut n = 2u32;
            while taken.contains(&name) {
                name = format!("{base}{n}");
                n += 1;
            }
            taken.insert(name.clone());
            name
        })
        .collect()
}

fn base_variant_name(value: &str) -> String {
    let mut words = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            words.push(c);
        } else if c.is_alphanumeric() {
            words.push_str(&format!(" U{:X} ", u32::from(c)));
        } else {
            words.push(' ');
        }
    }
    let name = words.to_upper_camel_case();
    let name = match name.chars().next() {
        None => "Empty".to_string(),
        Some(c) if c.is_ascii_digit() => format!("V{name}"),
        Some(_) => name,
    };
    match name.as_str() {
        "Unknown" | "Self" => format!("{name}Value"),
        _ => name,
    }
}

/// Doc attributes, one per line, so that prettyplease prints them as `///` lines.
fn doc_lines(text: &str) -> TokenStream {
    let lines = text.lines().map(|line| {
        let line = if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        };
        quote! { #[doc = #line] }
    });
    quote! { #(#lines)* }
}

/// The `pub mod open_enums { ... }` item for `enums` (nothing when there are none).
pub fn emit(enums: &[OpenEnum]) -> TokenStream {
    if enums.is_empty() {
        return TokenStream::new();
    }
    let module = Ident::new(MODULE, Span::call_site());
    let items = enums.iter().map(emit_one);
    quote! {
        /// Open enums: string enums whose set of values may grow.
        ///
        /// Each has one variant per value the spec lists and `Unknown(String)` for any other
        /// value, so a value added by the server later never fails decoding. Convert strings
        /// with `From`/`parse` (not by building `Unknown` by hand) so that known values map to
        /// their variants.
        pub mod #module {
            #(#items)*
        }
    }
}

fn emit_one(e: &OpenEnum) -> TokenStream {
    let ty = Ident::new(&e.name, Span::call_site());
    let name = &e.name;
    let variants: Vec<Ident> = variant_names(&e.values)
        .iter()
        .map(|v| Ident::new(v, Span::call_site()))
        .collect();
    let values = &e.values;
    let mut type_doc = e
        .description
        .clone()
        .unwrap_or_else(|| format!("The `{name}` enum of the API."));
    type_doc.push_str(&format!(
        "\n\nThis enum is open: a value not listed in the API description decodes as \
         [`{name}::Unknown`] instead of failing."
    ));
    let type_doc = doc_lines(&type_doc);
    let variant_docs = values.iter().map(|v| doc_lines(&format!("`{v:?}`")));
    let schema_description = e.description.clone().unwrap_or_default();

    quote! {
        #type_doc
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum #ty {
            #( #variant_docs #variants, )*
            /// A value not listed in the API description (kept verbatim).
            Unknown(::std::string::String),
        }

        impl #ty {
            /// Every value listed in the API description, in its order.
            pub const KNOWN: &'static [&'static str] = &[#(#values),*];

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    #( Self::#variants => #values, )*
                    Self::Unknown(value) => value.as_str(),
                }
            }

            /// Whether this is a value not listed in the API description.
            pub fn is_unknown(&self) -> bool {
                matches!(self, Self::Unknown(_))
            }
        }

        impl ::std::convert::From<&str> for #ty {
            fn from(value: &str) -> Self {
                match value {
                    #( #values => Self::#variants, )*
                    other => Self::Unknown(other.to_string()),
                }
            }
        }

        impl ::std::convert::From<::std::string::String> for #ty {
            fn from(value: ::std::string::String) -> Self {
                match value.as_str() {
                    #( #values => Self::#variants, )*
                    _ => Self::Unknown(value),
                }
            }
        }

        impl ::std::convert::From<#ty> for ::std::string::String {
            fn from(value: #ty) -> Self {
                match value {
                    #ty::Unknown(value) => value,
                    known => known.as_str().to_string(),
                }
            }
        }

        impl ::std::convert::AsRef<str> for #ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::str::FromStr for #ty {
            type Err = ::std::convert::Infallible;

            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::std::fmt::Display for #ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for #ty {
            fn serialize<S>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error>
            where
                S: ::serde::Serializer,
            {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #ty {
            fn deserialize<D>(deserializer: D) -> ::std::result::Result<Self, D::Error>
            where
                D: ::serde::Deserializer<'de>,
            {
                <::std::string::String as ::serde::Deserialize>::deserialize(deserializer)
                    .map(Self::from)
            }
        }

        impl ::schemars::JsonSchema for #ty {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(#name)
            }

            fn schema_id() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(concat!(module_path!(), "::", #name))
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                // Any string is valid; the listed values are documented by the first branch.
                ::schemars::json_schema!({
                    "description": #schema_description,
                    "anyOf": [
                        { "type": "string", "enum": Self::KNOWN },
                        { "type": "string" }
                    ]
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn variant_names_follow_the_rules() {
        let values = strings(&[
            "kilowatt-hours",
            "km/h",
            "FULLY_CHARGED",
            "live",
            "km_h",
            "KmH",
            "UNKNOWN",
            "unknown",
            "self",
            "4wd",
            "",
            "-",
            "über",
            "kWh",
            "a.b c",
        ]);
        assert_eq!(
            variant_names(&values),
            strings(&[
                "KilowattHours",
                "KmH",
                "FullyCharged",
                "Live",
                "KmH2",
                "KmH3",
                "UnknownValue",
                "UnknownValue2",
                "SelfValue",
                "V4wd",
                "Empty",
                "Empty2",
                "UfcBer",
                "KWh",
                "ABC",
            ])
        );
    }

    #[test]
    fn variant_names_are_valid_distinct_identifiers() {
        let values = strings(&[
            "",
            " ",
            "_",
            "__",
            "0",
            "00",
            "Unknown",
            "UnknownValue",
            "Self",
            "self",
            "crate",
            "a-1",
            "a_1",
            "A1",
            "ñ",
            "日本",
            "🚗",
            "x2",
            "X",
            "x",
        ]);
        let names = variant_names(&values);
        let distinct: BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        for name in &names {
            assert!(
                syn::parse_str::<Ident>(name).is_ok(),
                "not an identifier: {name}"
            );
            assert_ne!(name, "Unknown");
        }
        // Deterministic: the same input always gives the same names.
        assert_eq!(names, variant_names(&values));
    }

    fn schema(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn new_validates_the_schema() {
        let ok = OpenEnum::new(
            "ChargeState",
            &schema(serde_json::json!({
                "type": "string", "enum": ["A", "B", "A"], "description": "d"
            })),
            "/x",
        )
        .unwrap();
        assert_eq!(ok.values, strings(&["A", "B"]));
        assert_eq!(ok.description.as_deref(), Some("d"));
        assert_eq!(ok.rust_path(), "crate::open_enums::ChargeState");

        let err = |name: &str, json: serde_json::Value| {
            OpenEnum::new(name, &schema(json), "/p").unwrap_err()
        };
        assert!(
            err(
                "charge_state",
                serde_json::json!({"type": "string", "enum": ["A"]})
            )
            .contains("UpperCamelCase")
        );
        assert!(
            err("X", serde_json::json!({"type": "integer", "enum": [1]})).contains("type: string")
        );
        assert!(err("X", serde_json::json!({"type": "string"})).contains("non-empty `enum`"));
        assert!(
            err("X", serde_json::json!({"type": "string", "enum": ["a", 1]})).contains("strings")
        );
        assert!(
            err(
                "X",
                serde_json::json!({"type": "string", "enum": ["a"], "nullable": true})
            )
            .contains("nullable")
        );
    }

    #[test]
    fn emit_writes_the_whole_api() {
        let e = OpenEnum {
            name: "EnergyUnit".into(),
            description: Some("Unit of energy.\nSecond line.".into()),
            values: strings(&["kilowatt-hours", "km/h"]),
        };
        let file: syn::File = syn::parse2(emit(&[e])).unwrap();
        let code = prettyplease::unparse(&file);
        for needle in [
            "pub mod open_enums {",
            "/// Unit of energy.",
            "/// Second line.",
            "pub enum EnergyUnit {",
            "KilowattHours,",
            "KmH,",
            "Unknown(::std::string::String),",
            "pub const KNOWN: &'static [&'static str] = &[\"kilowatt-hours\", \"km/h\"];",
            "\"km/h\" => Self::KmH,",
            "pub fn is_unknown(&self) -> bool",
            "impl ::std::str::FromStr for EnergyUnit",
            "type Err = ::std::convert::Infallible;",
            "impl ::std::fmt::Display for EnergyUnit",
            "impl ::serde::Serialize for EnergyUnit",
            "impl<'de> ::serde::Deserialize<'de> for EnergyUnit",
            "impl ::schemars::JsonSchema for EnergyUnit",
        ] {
            assert!(code.contains(needle), "missing {needle:?} in:\n{code}");
        }
        assert!(emit(&[]).is_empty());
    }

    /// Open enums with awkward values. Their emitted code is committed as
    /// `xtask/tests/fixtures/open_enums_sample.rs` and compiled into these tests (module
    /// `sample` below), so the emitter's output is known to compile and behave.
    fn sample() -> Vec<OpenEnum> {
        vec![
            OpenEnum {
                name: "EnergyUnit".into(),
                description: Some("A unit with odd spellings.".into()),
                values: strings(&["kilowatt-hours", "km/h", "km_h", "UNKNOWN", "4wd", ""]),
            },
            OpenEnum {
                name: "ChargeState".into(),
                description: None,
                values: strings(&["CHARGING", "FULLY_CHARGED", "NOT_CHARGING"]),
            },
        ]
    }

    const SAMPLE_PATH: &str = "xtask/tests/fixtures/open_enums_sample.rs";

    #[test]
    fn sample_fixture_is_fresh() {
        let file: syn::File = syn::parse2(emit(&sample())).unwrap();
        let expected = format!(
            "// @generated by the open_enums tests of xtask (regenerate: UPDATE_EXPECT=1 cargo \
             test -p xtask). DO NOT EDIT.\n\n{}",
            prettyplease::unparse(&file)
        );
        let path = crate::workspace_root().join(SAMPLE_PATH);
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{SAMPLE_PATH} is stale; run `UPDATE_EXPECT=1 cargo test -p xtask`\n{}",
            crate::check::diff_summary(&actual, &expected, SAMPLE_PATH)
        );
    }

    mod sample {
        include!("../tests/fixtures/open_enums_sample.rs");
    }

    #[test]
    fn emitted_enums_round_trip_known_and_unknown_values() {
        use sample::open_enums::{ChargeState, EnergyUnit};

        // Known values decode to their variants and encode back unchanged.
        let state: ChargeState = serde_json::from_str("\"FULLY_CHARGED\"").unwrap();
        assert_eq!(state, ChargeState::FullyCharged);
        assert!(!state.is_unknown());
        assert_eq!(serde_json::to_string(&state).unwrap(), "\"FULLY_CHARGED\"");
        for (value, variant) in [
            ("kilowatt-hours", EnergyUnit::KilowattHours),
            ("km/h", EnergyUnit::KmH),
            ("km_h", EnergyUnit::KmH2),
            ("UNKNOWN", EnergyUnit::UnknownValue),
            ("4wd", EnergyUnit::V4wd),
            ("", EnergyUnit::Empty),
        ] {
            let json = serde_json::to_string(value).unwrap();
            let decoded: EnergyUnit = serde_json::from_str(&json).unwrap();
            assert_eq!(decoded, variant, "{value:?}");
            assert_eq!(serde_json::to_string(&decoded).unwrap(), json);
            assert_eq!(decoded.as_str(), value);
            assert_eq!(decoded.to_string(), value);
            assert_eq!(value.parse::<EnergyUnit>(), Ok(variant.clone()));
            assert_eq!(String::from(variant), value);
        }
        assert_eq!(
            EnergyUnit::KNOWN,
            ["kilowatt-hours", "km/h", "km_h", "UNKNOWN", "4wd", ""]
        );

        // Any other string is kept verbatim, never an error.
        for value in ["SOMETHING_NEW", "charging", "kilowatt hours", "日本", " "] {
            let json = serde_json::to_string(value).unwrap();
            let decoded: ChargeState = serde_json::from_str(&json).unwrap();
            assert_eq!(decoded, ChargeState::Unknown(value.to_string()));
            assert!(decoded.is_unknown());
            assert_eq!(serde_json::to_string(&decoded).unwrap(), json);
            assert_eq!(value.parse::<ChargeState>(), Ok(decoded.clone()));
            assert_eq!(decoded.as_str(), value);
        }

        // Inside a struct, an unknown value does not fail the whole body.
        #[derive(serde::Deserialize)]
        struct Body {
            state: ChargeState,
        }
        let body: Body = serde_json::from_str(r#"{"state":"PAUSED"}"#).unwrap();
        assert_eq!(body.state, ChargeState::Unknown("PAUSED".into()));
        // Non-strings are still type errors.
        assert!(serde_json::from_str::<ChargeState>("42").is_err());
    }

    #[test]
    fn emitted_enums_have_a_json_schema_listing_the_known_values() {
        use sample::open_enums::ChargeState;

        let schema = schemars::schema_for!(ChargeState);
        let json = serde_json::to_value(&schema).unwrap();
        assert_eq!(json["title"], "ChargeState");
        assert_eq!(
            json["anyOf"][0]["enum"],
            serde_json::json!(["CHARGING", "FULLY_CHARGED", "NOT_CHARGING"])
        );
        assert_eq!(json["anyOf"][1], serde_json::json!({"type": "string"}));
    }
}

//! The input framing shared by the targets: a tiny HTTP-like message, so that seeds are
//! readable and mutations of the status, the headers and the body are all reachable.
//!
//! ```text
//! <status> [word]\n
//! name: value\n        (any number of header lines)
//! \n
//! body…
//! ```

#![allow(dead_code)]

use http::{HeaderMap, HeaderName, HeaderValue};

/// A parsed fuzz input.
pub struct Message<'a> {
    pub status: u16,
    pub word: &'a str,
    pub headers: HeaderMap,
    pub body: &'a [u8],
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

pub fn parse(data: &[u8], default_status: u16) -> Message<'_> {
    let (first, rest) = split_line(data);
    let first = std::str::from_utf8(first).unwrap_or("");
    let mut parts = first.splitn(2, ' ');
    let status = parts
        .next()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(default_status);
    let word = parts.next().unwrap_or("").trim();
    // Headers end at the first empty line; without one there are none.
    let (head, rest): (&[u8], &[u8]) = if rest.first() == Some(&b'\n') {
        (&[], &rest[1..])
    } else {
        match rest.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (&[], rest),
        }
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                headers.append(n, v);
            }
        }
    }
    Message {
        status,
        word,
        headers,
        body: rest,
    }
}

/// Whether `text` leaks `secret`: the whole secret, or (when the input did not carry it outside
/// the secret's own occurrences) its first 10 characters — a truncated echo is a leak too.
pub fn leaks(text: &str, secret: &str, input: &[u8]) -> bool {
    if text.contains(secret) {
        return true;
    }
    let prefix = &secret[..10];
    let input = String::from_utf8_lossy(input).replace(secret, "");
    text.contains(prefix) && !input.contains(prefix)
}

/// A JSON string value found in a body, with the key it is the value of (when it is one).
pub struct JsonString {
    pub value: String,
    pub key: Option<String>,
}

/// Every string *value* of a JSON-ish body, found by scanning its text, so that truncated or
/// otherwise broken JSON is covered too (a cut-off last string is kept as far as it goes).
/// Object keys are not values: a string followed by `:` becomes the key of the next value.
/// Escapes are decoded when they are valid JSON escapes; a string with a broken escape is
/// kept raw.
pub fn json_strings(body: &[u8]) -> Vec<JsonString> {
    let mut out = Vec::new();
    let mut key: Option<String> = None;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < body.len() && body[j] != b'"' {
            j += if body[j] == b'\\' { 2 } else { 1 };
        }
        let raw = &body[start..j.min(body.len())];
        let raw = String::from_utf8_lossy(raw).into_owned();
        let text = serde_json::from_str::<String>(&format!("\"{raw}\"")).unwrap_or(raw);
        i = j + 1;
        let mut k = i;
        while k < body.len() && body[k].is_ascii_whitespace() {
            k += 1;
        }
        if body.get(k) == Some(&b':') {
            key = Some(text);
        } else {
            out.push(JsonString {
                value: text,
                key: key.take(),
            });
        }
    }
    out
}

/// `body` with every occurrence of `value` replaced by as many copies of a character `value`
/// does not contain (so the answer keeps its shape, and its length, but no longer carries
/// the value). `None` when no such replacement is possible.
pub fn without(body: &[u8], value: &str) -> Option<Vec<u8>> {
    let filler = ['Q', 'Z', 'J', '#', '@']
        .into_iter()
        .find(|c| !value.contains(*c))?;
    let text = std::str::from_utf8(body).ok()?;
    let replaced = text.replace(value, &filler.to_string().repeat(value.chars().count()));
    (!replaced.contains(value)).then(|| replaced.into_bytes())
}

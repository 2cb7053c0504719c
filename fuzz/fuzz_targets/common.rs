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

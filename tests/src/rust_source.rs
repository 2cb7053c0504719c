//! A small, careful reader of Rust source text for the structural tests
//! (`tests/tests/structure.rs`): it separates code from comments and string literals without a
//! parser dependency.
//!
//! [`Source::parse`] walks the text once, character by character, and keeps:
//! - the *code*: the text with every comment (`//`, `///`, `//!`, `/* */`, nested) and the
//!   contents of every string and character literal blanked out (replaced by spaces, newlines
//!   kept), so that `crate::x` inside a doc example or a message is not taken for a path;
//! - the *literals*: every string literal (`"…"`, `r#"…"#`, `b"…"`) with its line and its
//!   contents as written (escapes are not interpreted).
//!
//! Items under `#[cfg(test)]` (a unit-test module, a test-only function or `use`) are removed
//! from both when asked ([`Source::without_test_items`]): they are checks of the code, not the
//! code itself.
//!
//! ```
//! use smartcar_tests::rust_source::Source;
//!
//! let src = Source::parse("/// \"/v2.0/doc\"\nfn f() -> &'static str { \"/v2.0/user\" } // \"/x\"\n");
//! let literals: Vec<_> = src.literals.iter().map(|l| (l.line, l.text.as_str())).collect();
//! assert_eq!(literals, [(2, "/v2.0/user")]);
//! assert!(!src.code.contains("doc"));
//! ```

/// A string literal found in code (not in a comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    /// 1-based line where the literal starts.
    pub line: usize,
    /// Byte offset of the opening quote in the source.
    pub offset: usize,
    /// The contents between the quotes, as written.
    pub text: String,
}

/// A Rust source file split into code and string literals.
#[derive(Clone, Debug)]
pub struct Source {
    /// The source with comments and literal contents blanked (same length in bytes, same
    /// line breaks, so offsets and line numbers carry over).
    pub code: String,
    /// The string literals of the code, in order.
    pub literals: Vec<Literal>,
    /// Byte offsets where each line starts.
    line_starts: Vec<usize>,
}

impl Source {
    /// Reads `text`. Never fails: an unterminated comment or literal runs to the end of the file.
    pub fn parse(text: &str) -> Source {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut code = String::with_capacity(text.len());
        let mut literals = Vec::new();
        let mut line = 1usize;
        let mut i = 0usize;
        // Blanks one character: a newline stays, anything else becomes as many spaces as its
        // UTF-8 length (so byte offsets are preserved).
        fn blank(code: &mut String, c: char) {
            if c == '\n' {
                code.push('\n');
            } else {
                code.extend(std::iter::repeat_n(' ', c.len_utf8()));
            }
        }
        let at = |k: usize| chars.get(k).map(|&(_, c)| c);
        while i < chars.len() {
            let (offset, c) = chars[i];
            let next = at(i + 1);
            // Comments.
            if c == '/' && next == Some('/') {
                while i < chars.len() && chars[i].1 != '\n' {
                    blank(&mut code, chars[i].1);
                    i += 1;
                }
                continue;
            }
            if c == '/' && next == Some('*') {
                let mut depth = 0usize;
                while i < chars.len() {
                    let (c, n) = (chars[i].1, at(i + 1));
                    if c == '/' && n == Some('*') {
                        depth += 1;
                        blank(&mut code, c);
                        blank(&mut code, '*');
                        i += 2;
                        continue;
                    }
                    if c == '*' && n == Some('/') {
                        depth -= 1;
                        blank(&mut code, c);
                        blank(&mut code, '/');
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                        continue;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    blank(&mut code, c);
                    i += 1;
                }
                continue;
            }
            let prev_ident = i > 0 && is_ident(chars[i - 1].1);
            // Raw strings: r"…", r#"…"#, br"…" (the prefix must start an identifier).
            let raw_start = if !prev_ident && c == 'r' {
                Some(i + 1)
            } else if !prev_ident && c == 'b' && next == Some('r') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(mut k) = raw_start {
                let mut hashes = 0usize;
                while at(k) == Some('#') {
                    hashes += 1;
                    k += 1;
                }
                if at(k) == Some('"') {
                    for &(_, p) in &chars[i..=k] {
                        code.push(p);
                    }
                    let start_line = line;
                    let body_start = k + 1;
                    let mut j = body_start;
                    let mut end = None;
                    while j < chars.len() {
                        if chars[j].1 == '"' && (1..=hashes).all(|h| at(j + h) == Some('#')) {
                            end = Some(j);
                            break;
                        }
                        j += 1;
                    }
                    let end = end.unwrap_or(chars.len());
                    let mut content = String::new();
                    for &(_, p) in &chars[body_start..end] {
                        content.push(p);
                        if p == '\n' {
                            line += 1;
                        }
                        blank(&mut code, p);
                    }
                    literals.push(Literal {
                        line: start_line,
                        offset,
                        text: content,
                    });
                    // The closing quote and hashes.
                    let close = (end + 1 + hashes).min(chars.len());
                    for &(_, p) in &chars[end.min(chars.len())..close] {
                        code.push(p);
                    }
                    i = close;
                    continue;
                }
            }
            // Ordinary (and byte) strings.
            if c == '"' {
                code.push('"');
                let start_line = line;
                let mut content = String::new();
                let mut j = i + 1;
                while j < chars.len() {
                    let p = chars[j].1;
                    if p == '\\' {
                        content.push(p);
                        blank(&mut code, p);
                        if let Some(q) = at(j + 1) {
                            content.push(q);
                            if q == '\n' {
                                line += 1;
                            }
                            blank(&mut code, q);
                        }
                        j += 2;
                        continue;
                    }
                    if p == '"' {
                        break;
                    }
                    if p == '\n' {
                        line += 1;
                    }
                    content.push(p);
                    blank(&mut code, p);
                    j += 1;
                }
                if j < chars.len() {
                    code.push('"');
                }
                literals.push(Literal {
                    line: start_line,
                    offset,
                    text: content,
                });
                i = j + 1;
                continue;
            }
            // Character literals ('x', '\n', '\u{1F600}') versus lifetimes ('a).
            if c == '\'' {
                let len = if next == Some('\\') {
                    // Up to the closing quote (bounded: escapes are short).
                    (i + 3..(i + 12).min(chars.len()))
                        .find(|&k| chars[k].1 == '\'')
                        .map(|k| k - i + 1)
                } else if at(i + 2) == Some('\'') {
                    Some(3)
                } else {
                    None
                };
                if let Some(len) = len {
                    code.push('\'');
                    for &(_, p) in &chars[i + 1..i + len - 1] {
                        blank(&mut code, p);
                    }
                    code.push('\'');
                    i += len;
                    continue;
                }
            }
            if c == '\n' {
                line += 1;
            }
            code.push(c);
            i += 1;
        }
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(k, _)| k + 1))
            .collect();
        Source {
            code,
            literals,
            line_starts,
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// The same source with every item under `#[cfg(test)]` blanked out of the code and its
    /// literals dropped.
    pub fn without_test_items(mut self) -> Source {
        let bytes = self.code.as_bytes();
        let mut regions = Vec::new();
        let mut i = 0;
        while i + 1 < bytes.len() {
            if bytes[i] == b'#' && bytes[i + 1] == b'[' {
                let Some(close) = matching(bytes, i + 1, b'[', b']') else {
                    break;
                };
                let attr: String = self.code[i..=close]
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if attr == "#[cfg(test)]" {
                    let end = item_end(bytes, close + 1);
                    regions.push((i, end));
                    i = end;
                    continue;
                }
                i = close + 1;
                continue;
            }
            i += 1;
        }
        let mut code = std::mem::take(&mut self.code).into_bytes();
        for &(start, end) in &regions {
            for b in &mut code[start..end] {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
        // Only ASCII bytes outside literals and comments were replaced by ASCII spaces, and
        // every multi-byte character had already been blanked, so this stays UTF-8; fall back
        // to a lossy conversion rather than panic.
        self.code = String::from_utf8(code)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.literals
            .retain(|l| !regions.iter().any(|&(s, e)| (s..e).contains(&l.offset)));
        self
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The offset of the bracket closing the one at `open`.
fn matching(bytes: &[u8], open: usize, l: u8, r: u8) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &b) in bytes.iter().enumerate().skip(open) {
        if b == l {
            depth += 1;
        } else if b == r {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// Where the item starting at `from` (after its attribute) ends: after its `;` when it has no
/// body, after the brace closing its body otherwise. Further attributes are part of the item.
fn item_end(bytes: &[u8], from: usize) -> usize {
    let mut k = from;
    while k < bytes.len() {
        match bytes[k] {
            b'#' if bytes.get(k + 1) == Some(&b'[') => {
                k = matching(bytes, k + 1, b'[', b']').map_or(bytes.len(), |c| c + 1);
            }
            b';' => return k + 1,
            b'{' => return matching(bytes, k, b'{', b'}').map_or(bytes.len(), |c| c + 1),
            _ => k += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_literals_are_told_apart() {
        let text = r####"//! crate::doc "/v2.0/a"
/* block "/v2.0/b" /* nested crate::x */ still comment */
fn f<'a>(x: &'a str) -> char {
    let _ = r#"raw "/v2.0/c" text"#;
    let _ = "esc \" crate::y /v2.0/d";
    let _ = b"bytes";
    let _ = '"';
    let _ = '\'';
    use crate::real; // crate::comment
    'x'
}
"####;
        let src = Source::parse(text);
        let lits: Vec<_> = src
            .literals
            .iter()
            .map(|l| (l.line, l.text.as_str()))
            .collect();
        assert_eq!(
            lits,
            [
                (4, r#"raw "/v2.0/c" text"#),
                (5, r#"esc \" crate::y /v2.0/d"#),
                (6, "bytes"),
            ]
        );
        assert_eq!(src.code.len(), text.len());
        assert_eq!(src.code.lines().count(), text.lines().count());
        assert_eq!(src.code.matches("crate::").count(), 1);
        assert!(src.code.contains("use crate::real;"));
        assert!(src.code.contains("fn f<'a>(x: &'a str)"));
        assert_eq!(src.line_of(src.code.find("use crate").unwrap()), 9);
    }

    #[test]
    fn test_items_are_dropped() {
        let text = "use crate::a;\n#[cfg(test)]\nuse crate::b;\n#[cfg(test)]\n#[allow(x)]\nmod tests {\n    fn g() { let _ = \"/v2.0/t\"; }\n}\nfn h() { let _ = \"/v2.0/kept\"; }\n";
        let src = Source::parse(text).without_test_items();
        assert!(src.code.contains("crate::a"));
        assert!(!src.code.contains("crate::b"));
        assert!(!src.code.contains("fn g"));
        assert!(src.code.contains("fn h"));
        let lits: Vec<_> = src.literals.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(lits, ["/v2.0/kept"]);
    }
}

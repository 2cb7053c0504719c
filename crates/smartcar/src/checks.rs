//! Checks of what a caller passes in (ids, redirect URIs), before anything is sent.

use crate::Error;

/// Rejects ids that would change the path or query they are put in. Smartcar's ids are UUIDs;
/// anything in URL's unreserved set (letters, digits, `-`, `.`, `_`, `~`) is accepted, except
/// the dot segments `.` and `..` (a URL parser resolves them: `vehicles/../odometer` would
/// reach another endpoint). Everything else (`/`, `\`, `?`, `#`, `%`, spaces, control
/// characters, non-ASCII) is refused, as is an id longer than 256 bytes.
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
    if id.is_empty() || id.len() > 256 || id == "." || id == ".." || !id.chars().all(allowed) {
        let shown: String = id.chars().take(64).collect();
        return Err(Error::invalid(
            what,
            format!("{shown:?} is not a valid {what} (letters, digits, `-`, `.`, `_`, `~`)"),
        ));
    }
    Ok(())
}

/// Checks a redirect URI: an absolute URL (an http(s) one with a host, or a custom scheme as
/// mobile apps register), without a fragment (RFC 6749 §3.1.2).
pub(crate) fn check_redirect_uri(uri: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(uri).map_err(|e| format!("`{uri}` is not a URL ({e})"))?;
    if url.cannot_be_a_base() {
        return Err(format!(
            "`{uri}` is not a URL a browser can be sent back to"
        ));
    }
    if matches!(url.scheme(), "http" | "https") && url.host().is_none() {
        return Err(format!("`{uri}` has no host"));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "`{uri}` has a fragment (`#…`), which a redirect URI may not have (RFC 6749 §3.1.2)"
        ));
    }
    Ok(url)
}

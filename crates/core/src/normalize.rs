//! Path normalization: the one canonical form that is routed, authorized and forwarded.
//!
//! Unreserved percent-escapes are decoded, dot segments removed, repeated slashes merged.
//! Anything that could make a back end see a different path than the gateway checked is
//! refused instead of "fixed": an encoded `/`, a `\` (raw or encoded), NUL or control bytes,
//! and malformed escapes.

use std::borrow::Cow;

/// Why a path was refused (also the `reason` label of `portcullis_guard_refusals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (`/...`): absolute-form, authority-form or `*`.
    NotOriginForm,
    EncodedSlash,
    Backslash,
    NulOrControl,
    BadEscape,
}

impl PathError {
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotOriginForm => "not_origin_form",
            PathError::EncodedSlash => "encoded_slash",
            PathError::Backslash => "backslash",
            PathError::NulOrControl => "nul_or_control",
            PathError::BadEscape => "bad_escape",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            PathError::NotOriginForm => "request target must be an absolute path",
            PathError::EncodedSlash => "encoded '/' is not allowed in the path",
            PathError::Backslash => "'\\' is not allowed in the path",
            PathError::NulOrControl => "NUL and control characters are not allowed in the path",
            PathError::BadEscape => "malformed percent-escape in the path",
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Normalizes the path part of an origin-form request target (no query).
/// Returns the input unchanged (borrowed) when it is already canonical, the common case.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    // Fast scan: is any work needed at all?
    let mut needs_work = false;
    let mut prev = 0u8;
    for &b in bytes {
        match b {
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::NulOrControl),
            b'%' => needs_work = true,
            b'/' if prev == b'/' => needs_work = true,
            b'.' if prev == b'/' => needs_work = true,
            _ => {}
        }
        prev = b;
    }
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }

    // Pass 1: decode unreserved escapes, keep the others (upper-cased hex), refuse dangerous ones.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathError::BadEscape);
            };
            let v = h * 16 + l;
            match v {
                b'/' => return Err(PathError::EncodedSlash),
                b'\\' => return Err(PathError::Backslash),
                0..=0x1f | 0x7f => return Err(PathError::NulOrControl),
                v if is_unreserved(v) => decoded.push(v),
                v => {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    decoded.extend_from_slice(&[
                        b'%',
                        HEX[(v >> 4) as usize],
                        HEX[(v & 15) as usize],
                    ]);
                }
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }

    // Pass 2: merge slashes and remove dot segments (RFC 3986 §5.2.4; ".." stops at the root).
    let trailing = decoded.ends_with(b"/") || decoded.ends_with(b"/.") || decoded.ends_with(b"/..");
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segs {
        out.push('/');
        // Only ASCII and bytes copied from a &str: still valid UTF-8.
        out.push_str(std::str::from_utf8(s).map_err(|_| PathError::BadEscape)?);
    }
    if out.is_empty() || (trailing && !segs.is_empty()) {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// True when `path` is `prefix` or lies under it on a segment boundary (`/` or `;`, since
/// some back ends treat `;params` as part of the segment before it).
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with(';'),
        None => false,
    }
}

/// The canonical form of a route or guard prefix: `/api/orders/` → `/api/orders`; `/` stays `/`.
pub fn canonical_prefix(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalize_path(p).map(Cow::into_owned)
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        assert!(matches!(
            normalize_path("/api/orders/1"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(normalize_path("/"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize_path("/a.b/c..d"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn attack_paths_normalize_to_the_guarded_path() {
        for p in [
            "/auth/./admin",
            "//auth//admin",
            "/auth/%61dmin",
            "/auth/x/../admin",
            "/auth/%2e%2e/auth/admin",
            "/auth/admin/.",
            "/x/../../auth/admin",
        ] {
            let got = n(p).unwrap();
            assert!(
                got == "/auth/admin" || got == "/auth/admin/",
                "{p} -> {got}"
            );
        }
    }

    #[test]
    fn dangerous_encodings_are_refused() {
        assert_eq!(n("/auth%2fadmin"), Err(PathError::EncodedSlash));
        assert_eq!(n("/auth%2Fadmin"), Err(PathError::EncodedSlash));
        assert_eq!(n("/auth/admin%00"), Err(PathError::NulOrControl));
        assert_eq!(n("/auth\\admin"), Err(PathError::Backslash));
        assert_eq!(n("/auth%5cadmin"), Err(PathError::Backslash));
        assert_eq!(n("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(n("/a%4"), Err(PathError::BadEscape));
        assert_eq!(n("/a\u{1}b"), Err(PathError::NulOrControl));
        assert_eq!(n("http://x/a"), Err(PathError::NotOriginForm));
        assert_eq!(n("*"), Err(PathError::NotOriginForm));
    }

    #[test]
    fn reserved_escapes_stay_encoded_and_uppercased() {
        assert_eq!(n("/a%3fb").unwrap(), "/a%3Fb");
        assert_eq!(n("/a%20b").unwrap(), "/a%20b");
        assert_eq!(n("/caf%C3%A9").unwrap(), "/caf%C3%A9");
    }

    #[test]
    fn dot_segments_and_slashes() {
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/a/b/../").unwrap(), "/a/");
        assert_eq!(n("/..").unwrap(), "/");
        assert_eq!(n("/a//b///c/").unwrap(), "/a/b/c/");
        assert_eq!(n("/a/./b").unwrap(), "/a/b");
        assert_eq!(n("/.hidden").unwrap(), "/.hidden");
    }

    #[test]
    fn prefix_boundaries() {
        assert!(under_prefix("/auth/admin", "/auth/admin"));
        assert!(under_prefix("/auth/admin/x", "/auth/admin"));
        assert!(under_prefix("/auth/admin;jsessionid=1", "/auth/admin"));
        assert!(!under_prefix("/auth/administrator", "/auth/admin"));
        assert!(under_prefix("/anything", "/"));
    }
}

//! Where the browser goes after signing in: only ever back to this origin. `rd=` and the saved
//! URL are resolved the way browsers resolve a `Location` (the url crate implements the WHATWG
//! URL standard browsers follow), and anything that lands on another origin, or whose path a
//! browser could read as another host (`//host`, `/\host`, their encoded forms), becomes `/`.

/// The scheme and host (with port) a request was made to.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `https` or `http`.
    pub proto: &'a str,
    /// `host[:port]`, already checked by [`valid_host`].
    pub host: &'a str,
}

impl Origin<'_> {
    /// `https://host[:port]`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.proto, self.host)
    }
}

/// `host[:port]` or `[v6][:port]` that is safe to build URLs from.
pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        && url::Url::parse(&format!("https://{h}/")).is_ok_and(|u| u.host().is_some())
}

/// The path and query `target` points at, when it stays on `origin`; `/` otherwise.
pub fn same_origin(origin: &Origin<'_>, target: &str) -> String {
    same_origin_or_none(origin, target).unwrap_or_else(|| "/".to_string())
}

fn same_origin_or_none(origin: &Origin<'_>, target: &str) -> Option<String> {
    // Browsers drop tabs and newlines from URLs and read `\` as `/`: refuse both outright
    // rather than reason about what a browser would make of them.
    if target.is_empty() || target.contains('\\') || target.chars().any(char::is_control) {
        return None;
    }
    let base = url::Url::parse(&format!("{}/", origin.url())).ok()?;
    let resolved = base.join(target).ok()?;
    if resolved.origin() != base.origin()
        || !resolved.username().is_empty()
        || resolved.password().is_some()
    {
        return None;
    }
    let path = resolved.path();
    let lower = path.get(..4).map(str::to_ascii_lowercase);
    // A path-absolute URL beginning `//` is another host to a browser, and `/%2f` or `/%5c`
    // are one decode away from it.
    if !path.starts_with('/')
        || path.starts_with("//")
        || matches!(lower.as_deref(), Some("/%2f") | Some("/%5c"))
    {
        return None;
    }
    Some(match resolved.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Origin<'static> = Origin {
        proto: "https",
        host: "app.example:8443",
    };

    #[test]
    fn same_origin_targets_keep_their_path_and_query() {
        assert_eq!(same_origin(&O, "/app/x?y=1&z=%2F"), "/app/x?y=1&z=%2F");
        assert_eq!(same_origin(&O, "https://app.example:8443/a?b"), "/a?b");
        assert_eq!(same_origin(&O, "/a/../b/./c"), "/b/c");
        assert_eq!(same_origin(&O, "/app#frag"), "/app");
        assert_eq!(same_origin(&O, "relative"), "/relative");
    }

    #[test]
    fn every_way_off_the_origin_is_refused() {
        for bad in [
            "//evil.example",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2F%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "https://evil.example/",
            "http://app.example:8443/",
            "https://app.example/",
            "https://app.example:8443@evil.example/",
            "https://user@app.example:8443/",
            "javascript:alert(1)",
            "data:text/html,<script>",
            "/\t/evil.example",
            "/\n/evil.example",
            "/.//evil.example",
            "///evil.example",
            "",
        ] {
            assert_eq!(same_origin(&O, bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn hosts_are_checked_before_urls_are_built_from_them() {
        assert!(valid_host("app.example:8443"));
        assert!(valid_host("[::1]:8443"));
        assert!(valid_host("localhost"));
        for bad in ["", "a/b", "a b", "a@b", "evil.example/x", "a:b:c", "x\r\n"] {
            assert!(!valid_host(bad), "{bad:?}");
        }
    }
}

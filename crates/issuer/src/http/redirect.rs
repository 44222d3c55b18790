//! Redirect URI matching: exact string equality with the registered URIs, or Keycloak's trailing
//! `*` as a path prefix on the same origin. No userinfo, no fragments, http(s) only. Public for
//! the `redirect_uri` fuzz target.

use url::Url;

/// Whether `requested` may receive codes for a client registered with `registered`.
pub fn allowed(registered: &[String], requested: &str) -> bool {
    let Some(req) = acceptable(requested) else {
        return false;
    };
    registered.iter().any(|r| match r.strip_suffix('*') {
        None => r == requested,
        Some(prefix) => {
            let Some(pre) = acceptable(prefix) else {
                return false;
            };
            requested.starts_with(prefix)
                && pre.origin() == req.origin()
                // Only canonical URIs match a wildcard: no dot segments, no case or escape
                // variants that a browser would resolve differently from this string.
                && req.as_str() == requested
                && req.path().starts_with(pre.path())
        }
    })
}

/// Parses a URI we would redirect to, refusing the shapes used to smuggle another target.
fn acceptable(uri: &str) -> Option<Url> {
    if uri.contains(['\\', '#']) || uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let u = Url::parse(uri).ok()?;
    let ok = matches!(u.scheme(), "http" | "https")
        && u.username().is_empty()
        && u.password().is_none()
        && u.host_str().is_some_and(|h| !h.is_empty())
        && u.fragment().is_none();
    ok.then_some(u)
}

/// `uri` with `params` appended to its query; `None` when `uri` does not parse.
pub fn with_params(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut u = Url::parse(uri).ok()?;
    // Nothing to add: no bare `?` either.
    if !params.is_empty() {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Some(u.into())
}

/// `uri` with `params` as its fragment (`response_mode=fragment`); `None` when `uri` does not
/// parse. Registered URIs carry no fragment of their own (`allowed` refuses them).
pub fn with_fragment(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut u = Url::parse(uri).ok()?;
    let fragment = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    u.set_fragment(Some(&fragment));
    Some(u.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Vec<String> {
        vec![
            "http://localhost:8000/oidc/callback/".into(),
            "http://localhost:5173/*".into(),
        ]
    }

    #[test]
    fn exact_and_wildcard_matches() {
        assert!(allowed(&reg(), "http://localhost:8000/oidc/callback/"));
        assert!(allowed(&reg(), "http://localhost:5173/"));
        assert!(allowed(&reg(), "http://localhost:5173/app/cb?x=1"));
    }

    #[test]
    fn tricks_are_refused() {
        for bad in [
            "http://localhost:8000/oidc/callback", // no trailing slash: not exact
            "http://localhost:8000/oidc/callback/x", // prefix of an exact URI
            "http://LOCALHOST:8000/oidc/callback/", // case
            "http://localhost:8001/oidc/callback/", // port
            "https://localhost:8000/oidc/callback/", // scheme
            "http://localhost:8000/oidc/callback/#frag", // fragment
            "http://evil@localhost:8000/oidc/callback/", // userinfo
            "http://localhost:5173@evil.com/",     // userinfo as the wildcard origin
            "http://localhost:5173.evil.com/",     // host suffix
            "http://localhost:5173/../../evil",    // climbing out (parses to /evil)
            "http://localhost:5173/a\\@evil.com",  // backslash
            "javascript:alert(1)//http://localhost:5173/", // other scheme
            "http://localhost:5173/ x",            // whitespace
            "",
        ] {
            assert!(!allowed(&reg(), bad), "{bad}");
        }
        assert!(!allowed(
            &["javascript:*".to_string()],
            "javascript:alert(1)"
        ));
    }

    #[test]
    fn params_are_appended() {
        assert_eq!(
            with_params("http://x/cb?a=1", &[("code", "c d"), ("state", "s")]).unwrap(),
            "http://x/cb?a=1&code=c+d&state=s"
        );
        assert_eq!(with_params("http://x/", &[]).unwrap(), "http://x/");
        assert_eq!(
            with_fragment("http://x/cb?a=1", &[("code", "c d&e"), ("state", "s")]).unwrap(),
            "http://x/cb?a=1#code=c+d%26e&state=s"
        );
    }
}

//! Redirect URI matching (`redirect::allowed`) and `with_params`. Input: registered URIs, one
//! per line, then a 0x00 and the requested URI. No panic, and a requested URI is only ever
//! allowed when it is an http(s) URL without userinfo or fragment whose origin equals a
//! registered one's (an exact match, or a canonical URL under a `*` prefix on the same origin).

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_issuer::redirect::{allowed as redirect_allowed, with_params as redirect_with_params};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (registered, requested) = text
        .split_once('\0')
        .unwrap_or(("http://localhost:5173/*", &text));
    let registered: Vec<String> = registered.lines().map(str::to_owned).collect();

    let _ = redirect_with_params(requested, &[("code", "c d&e"), ("state", requested)]);
    if !redirect_allowed(&registered, requested) {
        return;
    }
    let req = Url::parse(requested)
        .unwrap_or_else(|e| panic!("{requested:?} allowed but unparsable: {e}"));
    assert!(
        matches!(req.scheme(), "http" | "https"),
        "{requested:?}: scheme"
    );
    assert!(
        req.username().is_empty() && req.password().is_none(),
        "{requested:?}: userinfo"
    );
    assert!(req.fragment().is_none(), "{requested:?}: fragment");
    assert!(
        req.host_str().is_some_and(|h| !h.is_empty()),
        "{requested:?}: no host"
    );
    let same_origin = registered.iter().any(|r| {
        r == requested
            || Url::parse(r.strip_suffix('*').unwrap_or(r))
                .is_ok_and(|u| u.origin() == req.origin())
    });
    assert!(
        same_origin,
        "{requested:?} allowed for {registered:?} off every origin"
    );
    // Appending the code must keep the target where it was.
    if let Some(with) = redirect_with_params(requested, &[("code", "x"), ("state", "y")]) {
        let w = Url::parse(&with).unwrap_or_else(|e| panic!("{with:?}: {e}"));
        assert_eq!(w.origin(), req.origin(), "{requested:?} -> {with:?}");
        assert_eq!(w.path(), req.path(), "{requested:?} -> {with:?}");
    }
});

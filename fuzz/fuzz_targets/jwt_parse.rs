//! The token parsers on arbitrary bytes: `bearer_token`, `check_charset`, `segments`,
//! `parse_header`, `parse`. No panic, and what each returns is consistent with its input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_authn::jwt::{bearer_token, check_charset, parse, parse_header, segments};

fuzz_target!(|data: &[u8]| {
    let max = 64 + usize::from(data.first().copied().unwrap_or(0)) * 64;
    assert!(bearer_token(None, max).is_err());
    if let Ok(token) = bearer_token(Some(data), max) {
        assert!(!token.is_empty() && token.len() <= max, "{token:?}");
        assert!(
            !token.starts_with([' ', '\t']) && !token.ends_with([' ', '\t']),
            "{token:?}"
        );
    }

    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let charset_ok = check_charset(token).is_ok();
    assert_eq!(
        charset_ok,
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
        "{token:?}"
    );
    if let Ok((h, p, s)) = segments(token) {
        assert_eq!(format!("{h}.{p}.{s}"), token);
        let _ = parse_header(h);
        let _ = parse_header(p);
    }
    let _ = parse_header(token);
    if let Ok(parsed) = parse(token) {
        let Ok((h, p, s)) = segments(token) else {
            panic!("{token:?}: parsed but not three segments");
        };
        assert_eq!(parsed.message, format!("{h}.{p}"));
        assert_eq!(parsed.signature, s);
        assert!(!format!("{:?}", parsed.header.alg).eq_ignore_ascii_case("none"));
        assert!(parsed.header.kid.as_ref().is_none_or(|k| k.len() <= 256));
    }
});

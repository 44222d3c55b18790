//! `[[trust]]` validation: every error, located at file:line:col.

use super::support::*;

fn errors(toml: &str) -> Vec<String> {
    let (auth, diags) = Fixture::new().try_build(toml);
    let errs = diags.error_strings();
    assert_eq!(auth.is_some(), errs.is_empty(), "{errs:?}");
    errs
}

#[test]
fn good_blocks_are_accepted() {
    for uri in [
        "embedded",
        "https://idp.example.com/realms/r/protocol/openid-connect/certs",
        "http://127.0.0.1:8080/certs",
        "http://localhost/certs",
        "http://10.1.2.3/certs",
        "http://192.168.0.4:8443/certs",
        "http://[::1]:9/certs",
    ] {
        assert_eq!(errors(&trust_toml(uri, "")), Vec::<String>::new(), "{uri}");
    }
}

#[test]
fn unknown_algorithm_is_located_with_a_hint() {
    let errs = errors(&trust_toml(
        "embedded",
        r#"algorithms = ["RS256", "RS257"]"#,
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("portcullis.toml:5:24: unknown algorithm \"RS257\""),
        "{}",
        errs[0]
    );
    assert!(errs[0].contains("did you mean"), "{}", errs[0]);
}

#[test]
fn none_is_refused_anywhere() {
    let errs = errors(&trust_toml("embedded", r#"algorithms = ["RS256", "none"]"#));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("\"none\" is never accepted"),
        "{}",
        errs[0]
    );
    let errs = errors(&trust_toml("embedded", r#"algorithms = ["NONE"]"#));
    assert!(errs[0].contains("never accepted"), "{}", errs[0]);
}

#[test]
fn hs_needs_a_long_enough_secret() {
    let errs = errors(&trust_toml("embedded", r#"algorithms = ["HS256"]"#));
    assert!(errs[0].contains("needs trust.hs_secret"), "{errs:?}");
    let errs = errors(&trust_toml(
        "embedded",
        "algorithms = [\"HS256\"]\nhs_secret = \"short\"",
    ));
    assert!(errs[0].contains("shorter than 32 bytes"), "{errs:?}");
    assert!(
        !errs[0].contains("short\""),
        "the secret is not echoed: {errs:?}"
    );
}

#[test]
fn bad_jwks_uris_are_refused() {
    for uri in [
        "http://idp.example.com/certs",
        "http://8.8.8.8/certs",
        "ftp://10.0.0.1/certs",
        "certs.json",
        "https://user:pw@idp.example.com/certs",
    ] {
        let errs = errors(&trust_toml(uri, ""));
        assert_eq!(errs.len(), 1, "{uri}: {errs:?}");
        assert!(
            errs[0].starts_with("portcullis.toml:3:12: jwks_uri"),
            "{}",
            errs[0]
        );
    }
}

#[test]
fn duplicate_issuer_and_every_error_are_reported() {
    let toml = format!(
        "{}{}{}",
        trust_toml("embedded", ""),
        trust_toml("embedded", ""),
        "[[trust]]\nissuer = \"https://b\"\njwks_uri = \"http://example.com/x\"\nalgorithms = [\"none\", \"HS512\"]\nleeway_seconds = 3600\n"
    );
    let errs = errors(&toml);
    assert!(
        errs.iter().any(
            |e| e.starts_with("portcullis.toml:7:10: duplicate [[trust]] issuer")
                && e.contains("first at line 2")
        ),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("\"none\"")), "{errs:?}");
    assert!(
        errs.iter().any(|e| e.contains("needs trust.hs_secret")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("jwks_uri")), "{errs:?}");
    assert!(
        errs.iter().any(|e| e.contains("leeway_seconds")),
        "{errs:?}"
    );
}

#[test]
fn embedded_without_an_issuer_is_refused() {
    let mut f = Fixture::new();
    f.env.embedded = None;
    let (auth, diags) = f.try_build(&trust_toml("embedded", ""));
    assert!(auth.is_none());
    assert!(diags.error_strings()[0].contains("embedded issuer is not enabled"));
}

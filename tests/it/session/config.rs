//! `portcullis check` on session configurations: a session route without `[session]`, a bad
//! cookie keys file and a bad route option are each reported at their place.

use crate::harness::{Gateway, Opts, check_in, route};

fn check(o: &Opts, keys: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    Gateway::write_config(dir.path(), o, 18443, 19000, None);
    if let Some(k) = keys {
        std::fs::write(dir.path().join("keys"), k).unwrap();
    }
    check_in(dir.path())
}

#[test]
fn session_configs_are_checked_with_locations() {
    let app = route(
        "app",
        "/app",
        &["http://127.0.0.1:1".into()],
        "auth = \"session\"",
    );
    let (code, text) = check(&Opts::new(app.clone()), None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("route \"app\" (routes/routes.toml:2) uses auth = \"session\" but there is no [session] section"),
        "{text}"
    );

    let session = "[issuer]\ndatabase = \"sqlite://data/x.db\"\n[session]\nprovider = \"embedded:myrealm\"\n\
                   client_id = \"portcullis\"\ncookie_keys = \"keys\"\n";
    let bad = route(
        "api",
        "/api",
        &["http://127.0.0.1:1".into()],
        "auth = \"public\"\npass_access_token = true",
    );
    let (code, text) = check(
        &Opts::new(app.clone() + &bad).extra(session),
        Some("# keys\nnot-a-key\n"),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("keys:2:1: not standard base64"), "{text}");
    assert!(
        text.contains("routes/routes.toml:11:21: pass_access_token needs auth = \"session\" or \"session_or_jwt\", not \"public\""),
        "{text}"
    );

    // Good keys: accepted; without a route to the embedded issuer, with a warning.
    let key = "oaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaE=\n";
    let warning =
        "warning: session.provider = \"embedded:myrealm\" but no route serves the embedded issuer";
    let (code, text) = check(&Opts::new(app.clone()).extra(session), Some(key));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(warning), "{text}");
    let auth = route("auth", "/auth", &["embedded:issuer".into()], "");
    let (code, text) = check(&Opts::new(app + &auth).extra(session), Some(key));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(warning), "{text}");
}

//! `[session]` validation: defaults, every refusal at its place, `${VAR}` secrets.

use super::*;
use crate::config::{Config, Diagnostics};

/// Loads `portcullis.toml` with `extra` after `[listen]`; the config or every error as text.
fn load(extra: &str) -> Result<Config, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.toml");
    std::fs::write(
        &path,
        format!("[listen]\npublic = \"127.0.0.1:8443\"\n{extra}"),
    )
    .unwrap();
    let mut d = Diagnostics::default();
    // `portcullis.toml:L:C: message`, without the temp dir.
    let dir = format!("{}/", dir.path().display());
    match Config::load(&path, &mut d) {
        Some(l) => Ok(l.config),
        None => Err(d
            .errors()
            .map(|e| e.to_string().replace(&dir, ""))
            .collect()),
    }
}

const ISSUER: &str = "[issuer]\ndatabase = \"sqlite://x.db\"\n";

#[test]
fn defaults_follow_the_contract() {
    let c = load(&format!(
        "{ISSUER}[session]\nprovider = \"embedded:myrealm\"\nclient_id = \"portcullis\"\n"
    ))
    .unwrap();
    let s = c.session.unwrap();
    assert_eq!(
        s.provider,
        SessionProvider::Embedded {
            realm: "myrealm".into()
        }
    );
    assert_eq!(s.cookie_name, "__Host-portcullis");
    assert_eq!(s.scopes, ["openid", "profile", "email"]);
    assert!(s.cookie_keys.ends_with("certs/session-keys"));
    assert_eq!(s.idle_timeout, Duration::from_secs(1800));
    assert_eq!(s.max_lifetime, Duration::from_secs(43_200));
    assert_eq!(s.store, SessionStore::Cookie);
    assert!(s.client_secret.is_none());
}

#[test]
fn an_external_provider_by_its_issuer_url() {
    let c = load(
        "[session]\nprovider = \"https://sso.example.com/realms/main/\"\nclient_id = \"gw\"\n\
         client_secret = \"${PORTCULLIS_TEST_UNSET_VAR:fallback}\"\nstore = \"cookie\"\n",
    )
    .unwrap();
    let s = c.session.unwrap();
    assert_eq!(
        s.provider,
        SessionProvider::Discovery {
            issuer: "https://sso.example.com/realms/main/".into()
        }
    );
    assert_eq!(s.client_secret.unwrap().expose(), "fallback");
}

#[test]
fn every_bad_setting_is_reported_at_its_place() {
    let errs = load(
        "[session]\n\
         provider = \"embedded:my realm\"\n\
         client_id = \"\"\n\
         client_secret = \"${PORTCULLIS_TEST_UNSET_VAR}\"\n\
         scopes = [\"profile\"]\n\
         cookie_name = \"bad;name\"\n\
         idle_timeout_seconds = 5\n\
         store = \"redis\"\n",
    )
    .unwrap_err();
    let want = [
        "portcullis.toml:4:12: session.provider = \"embedded:my realm\": \"my realm\" is not a realm name",
        "portcullis.toml:4:12: session.provider = \"embedded:my realm\" but the embedded issuer is not enabled",
        "portcullis.toml:9:24: session.idle_timeout_seconds must be between 60 and 2592000 (30 days)",
        "portcullis.toml:10:9: session.store = \"redis\" is not a session store",
        "portcullis.toml:5:13: session.client_id = \"\" is not a client id",
        "portcullis.toml:6:17: session.client_secret: environment variable PORTCULLIS_TEST_UNSET_VAR is not set",
        "portcullis.toml:7:10: session.scopes must include \"openid\"",
        "portcullis.toml:8:15: session.cookie_name = \"bad;name\" is not a cookie name",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "{w}\nnot in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn providers_and_stores_that_need_what_is_missing() {
    let errs = load(
        "[session]\nprovider = \"http://sso.example.com/realms/x\"\nclient_id = \"gw\"\n\
         store = \"database\"\nidle_timeout_seconds = 7200\nmax_lifetime_seconds = 3600\n\
         provider_ca = \"nowhere.pem\"\n",
    )
    .unwrap_err();
    for w in [
        "portcullis.toml:4:12: session.provider = \"http://sso.example.com/realms/x\": plain http is only allowed to loopback or private addresses",
        "portcullis.toml:6:9: session.store = \"database\" keeps sessions in the issuer's database",
        "portcullis.toml:7:24: session.idle_timeout_seconds = 7200 is longer than max_lifetime_seconds = 3600",
        "portcullis.toml:9:15: session.provider_ca: ",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "{w}\nnot in {errs:#?}"
        );
    }
}

#[test]
fn unknown_keys_are_refused() {
    let errs = load("[session]\nprovider = \"embedded:r\"\nclient_id = \"gw\"\ncookie = \"x\"\n")
        .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.starts_with("portcullis.toml:6:1: unknown field `cookie`")),
        "{errs:#?}"
    );
}

#[test]
fn environment_substitution() {
    let env = |v: &str| (v == "SET").then(|| "value".to_string());
    assert_eq!(substitute_env("a${SET}b", &env).unwrap(), "avalueb");
    assert_eq!(substitute_env("${UNSET:d}", &env).unwrap(), "d");
    assert_eq!(substitute_env("${UNSET:}", &env).unwrap(), "");
    assert_eq!(substitute_env("${UNSET}", &env).unwrap_err(), "UNSET");
    assert_eq!(
        substitute_env("plain ${open", &env).unwrap(),
        "plain ${open"
    );
}

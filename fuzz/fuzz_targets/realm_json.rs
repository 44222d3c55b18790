//! Realm templates from arbitrary bytes: `realm_file::parse` (with `${VAR}` substitution) and
//! `realm_import::check_references`, and `substitute` alone. No panic; every parse error
//! starts with `file:line:col: `; substitution leaves text without placeholders unchanged.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portcullis_issuer::realm_file::{parse, substitute};
use portcullis_issuer::realm_import::check_references;

fn env(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value".into()),
        "EMPTY" => Some(String::new()),
        // A value that itself looks like a placeholder must not be expanded again.
        "NESTED" => Some("${SET}".into()),
        "QUOTE" => Some("\"}{\\".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let out = substitute(text, &env);
    if !text.contains("${") {
        assert_eq!(out, text);
    }

    let file = Path::new("realms/fuzz.json");
    match parse(file, text, &env) {
        Ok(realm) => {
            assert!(!realm.realm.trim().is_empty());
            let _ = check_references(&realm);
            // What an export writes back must parse again.
            let json = serde_json::to_string(&realm).unwrap_or_else(|e| panic!("serialize: {e}"));
            if !json.contains("${") {
                let again = parse(file, &json, &env).unwrap_or_else(|e| panic!("re-parse: {e}"));
                assert_eq!(again, realm);
            }
        }
        Err(e) => {
            let rest = e
                .strip_prefix("realms/fuzz.json:")
                .unwrap_or_else(|| panic!("error without its file: {e:?}"));
            let mut parts = rest.splitn(3, ':');
            let (Some(l), Some(c)) = (parts.next(), parts.next()) else {
                panic!("error without line:col: {e:?}");
            };
            assert!(
                l.parse::<usize>().is_ok_and(|l| l >= 1) && c.parse::<usize>().is_ok(),
                "error without line:col: {e:?}"
            );
        }
    }
});

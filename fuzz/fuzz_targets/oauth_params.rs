//! OAuth form bodies and queries (`Params::parse`): no panic, and a parameter sent twice is
//! refused rather than silently picking one (RFC 6749 §3.1).

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_issuer::params::Params;

/// The value of each of `keys` in an OAuth form or query, or the parser's error text.
fn oauth_params(raw: &[u8], keys: &[&str]) -> Result<Vec<Option<String>>, String> {
    let p = Params::parse(raw).map_err(|e| e.description().to_owned())?;
    Ok(keys.iter().map(|k| p.get(k).map(str::to_owned)).collect())
}

const KEYS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "redirect_uri",
    "code",
    "code_verifier",
    "scope",
    "state",
    "refresh_token",
    "username",
    "password",
];

fuzz_target!(|data: &[u8]| {
    let Ok(values) = oauth_params(data, KEYS) else {
        return;
    };
    // Decoding again through serde_urlencoded must agree: each key at most once.
    if let Ok(pairs) = serde_urlencoded_pairs(data) {
        for (k, v) in KEYS.iter().zip(&values) {
            let sent: Vec<&String> = pairs
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v)
                .collect();
            assert!(
                sent.len() <= 1,
                "{k} sent {} times but accepted",
                sent.len()
            );
            assert_eq!(v.as_ref(), sent.first().copied().filter(|s| !s.is_empty()));
        }
    }
});

fn serde_urlencoded_pairs(data: &[u8]) -> Result<Vec<(String, String)>, ()> {
    Ok(url::form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

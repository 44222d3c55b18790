//! `[tracing]` validation: off when absent, defaults, every refusal at its place.

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
    let dir = format!("{}/", dir.path().display());
    match Config::load(&path, &mut d) {
        Some(l) => Ok(l.config),
        None => Err(d
            .errors()
            .map(|e| e.to_string().replace(&dir, ""))
            .collect()),
    }
}

#[test]
fn off_unless_configured() {
    assert!(load("").unwrap().tracing.is_none());
}

#[test]
fn defaults_and_the_traces_path() {
    let t = load("[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/\"\n")
        .unwrap()
        .tracing
        .unwrap();
    assert_eq!(
        t,
        TracingSettings {
            traces_url: "http://127.0.0.1:4318/v1/traces".into(),
            service_name: "portcullis".into(),
            sample_ratio: 1.0,
        }
    );
    let t = load(
        "[tracing]\notlp_endpoint = \"https://otel.example.com/collector\"\n\
         service_name = \"edge\"\nsample_ratio = 0\n",
    )
    .unwrap()
    .tracing
    .unwrap();
    assert_eq!(t.traces_url, "https://otel.example.com/collector/v1/traces");
    assert_eq!(t.service_name, "edge");
    assert_eq!(t.sample_ratio, 0.0);
}

#[test]
fn refusals_name_their_place() {
    let errs = load(
        "[tracing]\notlp_endpoint = \"127.0.0.1:4318\"\nservice_name = \" \"\nsample_ratio = 1.5\n",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("portcullis.toml:4:17:"), "{errs:?}");
    assert!(errs[0].contains("is not an http(s) URL"), "{errs:?}");
    assert!(errs[1].starts_with("portcullis.toml:5:16:"), "{errs:?}");
    assert!(errs[1].contains("service_name is empty"), "{errs:?}");
    assert!(errs[2].starts_with("portcullis.toml:6:16:"), "{errs:?}");
    assert!(errs[2].contains("not between 0.0 and 1.0"), "{errs:?}");

    for bad in ["\"ftp://collector:4318\"", "\"http://collector:4318/?x=1\""] {
        let errs = load(&format!("[tracing]\notlp_endpoint = {bad}\n")).unwrap_err();
        assert!(errs[0].contains("is not an http(s) URL"), "{bad}: {errs:?}");
    }
    let errs = load("[tracing]\notlp_endpoint = \"http://user:hunter2@c:4318\"\n").unwrap_err();
    assert!(errs[0].contains("carries credentials"), "{errs:?}");
    assert!(!errs.concat().contains("hunter2"), "{errs:?}");
    let errs = load("[tracing]\notlp_endpoint = \"http://c:4318/v1/traces\"\n").unwrap_err();
    assert!(errs[0].contains("already ends in /v1/traces"), "{errs:?}");
    let errs =
        load("[tracing]\notlp_endpoint = \"http://c:4318\"\nsample_ratio = nan\n").unwrap_err();
    assert!(errs[0].contains("not between"), "{errs:?}");
    let errs = load("[tracing]\nservice_name = \"x\"\n").unwrap_err();
    assert!(errs[0].contains("otlp_endpoint"), "{errs:?}");
    let errs = load("[tracing]\notlp_endpoint = \"http://c:4318\"\nheaders = 1\n").unwrap_err();
    assert!(errs[0].contains("headers"), "{errs:?}");
}

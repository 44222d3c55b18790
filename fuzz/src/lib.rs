//! Helpers shared by the fuzz targets: turning fuzz bytes into header maps and temp files.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Names the gateway treats specially, so the fuzzer reaches them without guessing them.
pub const INTERESTING: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-ssl",
    "forwarded",
    "x-real-ip",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-request-roles",
    "x-auth-request-access-token",
    "x-auth-request-preferred-username",
    "connection",
    "upgrade",
    "keep-alive",
    "te",
    "trailer",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "host",
    "authorization",
    "cookie",
    "x-request-id",
];

/// A header map from lines of `name:value`. A name byte below `INTERESTING.len()` picks a
/// known name, so short inputs already hit the interesting cases; other names are taken as
/// written (and skipped when they are not valid header names, as an HTTP parser would).
pub fn header_map(data: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let name = match name {
            [i] if (*i as usize) < INTERESTING.len() => {
                HeaderName::from_static(INTERESTING[*i as usize])
            }
            n => match HeaderName::from_bytes(n) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        let Ok(value) = HeaderValue::from_bytes(value.trim_ascii()) else {
            continue;
        };
        h.append(name, value);
    }
    h
}

/// A scratch directory for loaders that read files.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("portcullis-fuzz")
        .tempdir()
        .unwrap_or_else(|e| panic!("no temp dir: {e}"))
}

/// The property every config loader keeps: a refused file yields at least one error, and
/// every diagnostic reads `file:line:col: message` with the place inside the file.
pub fn check_diagnostics(
    file: &std::path::Path,
    text: &[u8],
    diags: &portcullis_core::config::Diagnostics,
    refused: bool,
) {
    use portcullis_core::config::diag::display_path;
    assert!(
        !refused || diags.has_errors(),
        "refused without an error:\n{diags}"
    );
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diags.all() {
        let shown = d.to_string();
        let path = display_path(&d.file);
        let place = shown
            .strip_prefix(&path)
            .and_then(|r| r.strip_prefix(':'))
            .unwrap_or_else(|| panic!("diagnostic without its file: {shown:?}"));
        let mut parts = place.splitn(3, ':');
        let (Some(l), Some(c), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("diagnostic without line:col: {shown:?}");
        };
        let (Ok(l), Ok(c)) = (l.parse::<usize>(), c.parse::<usize>()) else {
            panic!("diagnostic without numeric line:col: {shown:?}");
        };
        assert!(l >= 1 && c >= 1, "0-based place: {shown:?}");
        // Only diagnostics about this file can be checked against its text.
        if d.file == file {
            assert!(
                l <= lines.len(),
                "line {l} past the end ({} lines): {shown:?}",
                lines.len()
            );
            let width = lines[l - 1].chars().count();
            assert!(
                c <= width + 1,
                "col {c} past the end of line {l} ({width} chars): {shown:?}"
            );
        }
    }
}

/// True when every URL in a TOML document names an IP address or `localhost`: route loading
/// resolves upstream hosts, and a fuzzer must not send DNS queries.
pub fn only_local_hosts(text: &[u8]) -> bool {
    fn walk(v: &toml::Value) -> bool {
        match v {
            toml::Value::String(s) => match url::Url::parse(s) {
                Ok(u) => match u.host() {
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    _ => true,
                },
                Err(_) => true,
            },
            toml::Value::Array(a) => a.iter().all(walk),
            toml::Value::Table(t) => t.values().all(walk),
            _ => true,
        }
    }
    // What doesn't parse as TOML is refused before any upstream is looked at.
    match std::str::from_utf8(text).map(toml::from_str::<toml::Table>) {
        Ok(Ok(t)) => t.values().all(walk),
        _ => true,
    }
}

/// A file in a per-process scratch directory, rewritten for each input.
pub fn scratch_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let path = DIR.get_or_init(scratch).path().join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

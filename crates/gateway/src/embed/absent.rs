//! The embedded issuer of a build without the feature `issuer` (the sidecar build): a type
//! with no values, so every `Option<Arc<EmbeddedIssuer>>` is `None` and its methods can't be
//! called, and an `attach` that refuses a config enabling `[issuer]`.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Result;

use super::{Answer, IssuerUse, NOT_BUILT};
use portcullis_authn::AuthnEnv;
use portcullis_core::config::{Diagnostic, Diagnostics, Loaded};

/// Never made: this build has no issuer to embed.
pub enum EmbeddedIssuer {}

/// The listener a request to the issuer came in on (the hosted build's `Listener`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Public,
    Internal,
}

impl EmbeddedIssuer {
    pub async fn call(
        &self,
        _req: http::Request<axum::body::Body>,
        _listener: Listener,
        _client: Option<IpAddr>,
        _admin: bool,
    ) -> Result<Answer> {
        match *self {}
    }

    pub async fn serve_internal_on(
        &self,
        _socket: std::net::TcpListener,
        _audit: bool,
        _shutdown: pingora::server::ShutdownWatch,
        _linger: std::time::Duration,
    ) -> Result<()> {
        match *self {}
    }

    pub async fn ready(&self) -> bool {
        match *self {}
    }

    pub async fn sample(&self, _sessions_at: Option<i64>) -> Vec<super::StoreSample> {
        match *self {}
    }
}

/// Refuses an enabled `[issuer]`, at its place in the file; anything else has no issuer to
/// prepare. (`embedded:issuer` routes and `jwks_uri = "embedded"` are refused by
/// `Snapshot::load`, on every reload too.)
pub fn attach(
    loaded: &Loaded,
    _issuer_use: IssuerUse,
    _threads: usize,
    _env: &mut AuthnEnv,
    diags: &mut Diagnostics,
) -> Result<Option<Arc<EmbeddedIssuer>>> {
    if loaded.config.issuer.is_some() {
        let src = &loaded.source;
        let diag = match issuer_key_span(&src.text) {
            Some(span) => src.error(span, format!("[issuer]: {NOT_BUILT}")),
            None => Diagnostic::file_error(&src.path, format!("[issuer]: {NOT_BUILT}")),
        };
        diags.push(diag.with_hint(
            "remove [issuer] (or set enabled = false), or run a build with the default features",
        ));
    }
    Ok(None)
}

/// Where the top-level `issuer` key is written (`[issuer]`, `issuer.x = …` or `issuer = {…}`).
fn issuer_key_span(text: &str) -> Option<std::ops::Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    doc.get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "issuer")
        .map(|(k, _)| k.span())
}

#[cfg(test)]
mod tests {
    //! The sidecar build (`cargo test -p portcullis-gateway --no-default-features`) refuses
    //! every config that asks for the issuer, each at its place, and still loads the others.

    use crate::app::{IssuerUse, LoadError, load};
    use crate::embed::NOT_BUILT;

    /// A config dir with `portcullis.toml` = `config`, one route file and no policies.
    fn dir(config: &str, route: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("portcullis.toml"), config).unwrap();
        std::fs::create_dir(d.path().join("routes")).unwrap();
        std::fs::write(d.path().join("routes/r.toml"), route).unwrap();
        d
    }

    const LISTEN: &str = "[listen]\npublic = \"127.0.0.1:8443\"\n";
    const ROUTE: &str =
        "[[route]]\nname = \"app\"\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:8080\"]\n";

    /// The errors of loading the config in `d`, for each command's use of the issuer.
    fn errors(d: &tempfile::TempDir) -> Vec<Vec<String>> {
        let path = d.path().join("portcullis.toml");
        [IssuerUse::CheckOnly, IssuerUse::ReadKeys, IssuerUse::Start]
            .into_iter()
            .map(|u| match load(&path, u) {
                Ok(_) => Vec::new(),
                Err(LoadError::Config(diags)) => diags.error_strings(),
                Err(LoadError::Start(e)) => panic!("{u:?}: refused as a start error: {e:#}"),
            })
            .collect()
    }

    #[test]
    fn an_issuer_section_is_refused_where_it_is_written() {
        let d = dir(
            &format!("{LISTEN}\n[issuer]\ndatabase = \"sqlite://data/p.db\"\n"),
            ROUTE,
        );
        for errs in errors(&d) {
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(
                errs[0].contains("portcullis.toml:4:2: [issuer]: ") && errs[0].contains(NOT_BUILT),
                "{errs:?}"
            );
        }
        // Inline and dotted forms are found too.
        let d = dir(&format!("issuer = {{}}\n{LISTEN}"), ROUTE);
        for errs in errors(&d) {
            assert!(
                errs[0].contains("portcullis.toml:1:1: [issuer]: "),
                "{errs:?}"
            );
        }
    }

    #[test]
    fn a_disabled_issuer_section_is_accepted() {
        let d = dir(&format!("{LISTEN}\n[issuer]\nenabled = false\n"), ROUTE);
        for errs in errors(&d) {
            assert!(errs.is_empty(), "{errs:?}");
        }
    }

    #[test]
    fn embedded_upstreams_and_keys_are_refused() {
        let d = dir(
            &format!(
                "{LISTEN}\n[[trust]]\nissuer = \"https://idp.test/realms/r\"\njwks_uri = \"embedded\"\n\n\
                 [[trust]]\nissuer = \"https://other.test\"\njwks_uri = \"https://other.test/jwks\"\n"
            ),
            "[[route]]\nname = \"auth\"\nprefix = \"/auth\"\nupstreams = [\"embedded:issuer\"]\n",
        );
        for errs in errors(&d) {
            assert_eq!(errs.len(), 2, "{errs:?}");
            assert!(
                errs.iter().any(
                    |e| e.contains("portcullis.toml:6:12: jwks_uri = \"embedded\": ")
                        && e.contains(NOT_BUILT)
                ),
                "{errs:?}"
            );
            assert!(
                errs.iter().any(|e| e.contains("route \"auth\"")
                    && e.contains("uses \"embedded:issuer\"")
                    && e.contains(NOT_BUILT)),
                "{errs:?}"
            );
        }
    }

    #[test]
    fn a_config_without_the_issuer_loads() {
        let d = dir(
            &format!(
                "{LISTEN}\n[[trust]]\nissuer = \"https://other.test\"\njwks_uri = \"https://other.test/jwks\"\n"
            ),
            ROUTE,
        );
        let loaded = load(&d.path().join("portcullis.toml"), IssuerUse::Start)
            .unwrap_or_else(|_| panic!("refused"));
        assert!(loaded.issuer.is_none());
        assert_eq!(loaded.snapshot.routes.routes().len(), 1);
    }
}

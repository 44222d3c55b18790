//! What the command line does without a running issuer: check a realm template, import or
//! export a realm, rotate a realm's key, read the published keys. Each opens the store itself.

use std::path::Path;

use super::keys;
use super::realm_file;
use super::realm_import;
use portcullis_core::config::IssuerSettings;
use portcullis_store as store;

/// For `portcullis check`: parses a realm template and checks its references without a
/// database. The error is `file:line:col: message` for JSON errors, else names the realm.
pub fn realm_check(file: &Path) -> Result<realm_file::RealmFile, String> {
    let realm = realm_file::load(file)?;
    realm_import::check_references(&realm).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(realm)
}

/// For `portcullis explain`: every realm's published keys, read from the existing store
/// without creating, migrating, importing or generating anything.
pub async fn published_keys(
    settings: &IssuerSettings,
    base_dir: &Path,
    now: i64,
) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
    let store = store::open_with(&settings.database, base_dir, store::Access::ReadOnly).await?;
    keys::read_published(store.as_ref(), now).await
}

/// `portcullis realm import --file F [--sync]`.
pub async fn realm_import(
    settings: &IssuerSettings,
    base_dir: &Path,
    file: &Path,
    sync: bool,
) -> anyhow::Result<realm_import::Outcome> {
    let realm = realm_file::load(file).map_err(anyhow::Error::msg)?;
    let store = store::open(&settings.database, base_dir).await?;
    realm_import::apply(store.as_ref(), &realm, sync).await
}

/// `portcullis realm export --realm R`: a template without password hashes or secrets.
pub async fn realm_export(
    settings: &IssuerSettings,
    base_dir: &Path,
    realm: &str,
) -> anyhow::Result<serde_json::Value> {
    let store = store::open(&settings.database, base_dir).await?;
    Ok(serde_json::to_value(
        realm_import::export(store.as_ref(), realm).await?,
    )?)
}

/// `portcullis keys rotate --realm R`: returns the new key id. A running gateway picks the new
/// key up when it reloads the realm's keys.
pub async fn keys_rotate(
    settings: &IssuerSettings,
    base_dir: &Path,
    realm: &str,
) -> anyhow::Result<String> {
    let now = i64::try_from(portcullis_core::clock::system().now_unix()).unwrap_or(i64::MAX);
    keys_rotate_at(settings, base_dir, realm, now).await
}

/// `keys_rotate` at a given time (tests run on a manual clock).
pub(crate) async fn keys_rotate_at(
    settings: &IssuerSettings,
    base_dir: &Path,
    realm: &str,
    now: i64,
) -> anyhow::Result<String> {
    let store = store::open(&settings.database, base_dir).await?;
    let Some(row) = store.get_realm(realm).await? else {
        anyhow::bail!("realm {realm} does not exist");
    };
    keys::rotate(
        store.as_ref(),
        realm,
        &row.settings.default_signature_algorithm,
        now,
    )
    .await
}

//! Signing keys per realm: persisted in the store, the active signer, JWKS documents served
//! from memory, and rotation with a grace period for retired public keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use serde_json::json;

use super::action_tokens::ActionKey;
use super::refresh_tokens::RefreshKey;
use super::seal::SealKeys;
use super::signing;
pub use super::signing::Signer;
use portcullis_store::{KeyRow, Secret, Store};

/// How long a retired key's public half stays in the JWKS: longer than any token it signed
/// can live (access and id tokens live minutes; a day leaves room for clock skew and caches).
pub const RETIRED_KEY_GRACE_SECONDS: i64 = 24 * 3600;

/// One realm's keys as served.
pub struct RealmKeys {
    pub signer: Signer,
    /// The realm's JWKS document, serialized once.
    pub jwks_json: bytes::Bytes,
    pub jwks: serde_json::Value,
    /// Verification keys of the published set by `kid`, parsed once.
    pub decoding: HashMap<String, (jsonwebtoken::Algorithm, jsonwebtoken::DecodingKey)>,
    /// Refresh-token keys, one per published signing key, the active one's first.
    pub refresh: Vec<RefreshKey>,
    /// Action-token keys (mailed links), one per published signing key, the active one's first.
    pub action: Vec<ActionKey>,
    /// Sealing keys of every key row, retired ones included (`seal`).
    pub seal: SealKeys,
}

impl RealmKeys {
    /// The key new refresh tokens are signed with.
    pub fn refresh_signer(&self) -> anyhow::Result<&RefreshKey> {
        self.refresh
            .first()
            .ok_or_else(|| anyhow::anyhow!("no refresh-token key"))
    }
}

/// What a realm's key rows publish.
struct Published {
    signer: Option<Signer>,
    jwks: Vec<serde_json::Value>,
    refresh: Vec<RefreshKey>,
    action: Vec<ActionKey>,
}

/// Every realm's keys; swapped whole when a realm's keys change.
#[derive(Default)]
pub struct KeyRing {
    realms: ArcSwap<HashMap<String, Arc<RealmKeys>>>,
    union: ArcSwap<JwkSet>,
    version: AtomicU64,
}

/// A new active key row for `realm` with algorithm `alg`. CPU-heavy for RSA.
pub fn generate(realm: &str, alg: &str, now: i64) -> anyhow::Result<KeyRow> {
    let der = signing::generate(alg)?;
    let kid = Signer::from_pkcs8(alg, &der)?.kid;
    Ok(KeyRow {
        kid,
        realm: realm.to_string(),
        alg: alg.to_string(),
        private_der: Secret(der),
        created_at: now,
        active: true,
        retired_at: None,
    })
}

/// The public keys `rows` publish at `now` (active ones and retired ones within the grace),
/// active first, then newest: verifiers that try keys in order hit the signer at once; the
/// refresh-token keys that go with them, in the same order; and the active signer.
fn published(realm: &str, mut rows: Vec<KeyRow>, now: i64) -> anyhow::Result<Published> {
    rows.sort_by_key(|k| (!k.active, std::cmp::Reverse(k.created_at)));
    let mut signer = None;
    let mut jwks = Vec::new();
    let mut refresh = Vec::new();
    let mut action = Vec::new();
    for row in &rows {
        let key = Signer::from_pkcs8(&row.alg, row.private_der.expose())
            .map_err(|e| anyhow::anyhow!("realm {realm}: stored key {}: {e}", row.kid))?;
        let in_grace = row
            .retired_at
            .is_none_or(|t| t + RETIRED_KEY_GRACE_SECONDS > now);
        if row.active || in_grace {
            jwks.push(key.public_jwk());
            refresh.push(RefreshKey::derive(realm, row.private_der.expose())?);
            action.push(ActionKey::derive(realm, row.private_der.expose())?);
        }
        if row.active {
            signer = Some(key);
        }
    }
    Ok(Published {
        signer,
        jwks,
        refresh,
        action,
    })
}

/// Every realm's published keys, only read from `store` (nothing is generated): what
/// `portcullis explain` checks embedded tokens against.
pub async fn read_published(store: &dyn Store, now: i64) -> anyhow::Result<JwkSet> {
    let mut all = Vec::new();
    for realm in store.realm_names().await? {
        let rows = store.list_keys(&realm).await?;
        all.extend(published(&realm, rows, now)?.jwks);
    }
    Ok(serde_json::from_value(json!({ "keys": all }))?)
}

impl KeyRing {
    /// Loads `realm`'s keys, generating one with `alg` if the realm has no active key of that
    /// algorithm (first start, or `defaultSignatureAlgorithm` changed).
    pub async fn load_realm(
        &self,
        store: &dyn Store,
        realm: &str,
        alg: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let mut rows = store.list_keys(realm).await?;
        if !rows.iter().any(|k| k.active && k.alg == alg) {
            rows = ensure(store, realm, alg, now).await?;
        }
        let active = rows.iter().find(|r| r.active).map(|r| r.kid.clone());
        let seal = SealKeys::derive(realm, &rows, active.as_deref().unwrap_or_default())?;
        let Published {
            signer,
            jwks,
            refresh,
            action,
        } = published(realm, rows, now)?;
        let Some(signer) = signer else {
            anyhow::bail!("realm {realm}: no active signing key");
        };
        let doc = json!({ "keys": jwks });
        let set: JwkSet = serde_json::from_value(doc.clone())?;
        let mut decoding = HashMap::new();
        for jwk in &set.keys {
            if let Some(kid) = &jwk.common.key_id {
                let alg = match jwk.common.key_algorithm {
                    Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
                    Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => jsonwebtoken::Algorithm::EdDSA,
                    _ => jsonwebtoken::Algorithm::RS256,
                };
                let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
                decoding.insert(kid.clone(), (alg, key));
            }
        }
        let keys = Arc::new(RealmKeys {
            signer,
            jwks_json: bytes::Bytes::from(serde_json::to_vec(&doc)?),
            jwks: doc,
            decoding,
            refresh,
            action,
            seal,
        });
        let current = self.realms.load();
        if current
            .get(realm)
            .is_some_and(|k| k.jwks == keys.jwks && k.signer.kid == keys.signer.kid)
        {
            // Unchanged: keep the version, so verifiers don't rebuild their key caches.
            return Ok(());
        }
        let mut map = HashMap::clone(&current);
        map.insert(realm.to_string(), keys);
        let all: Vec<serde_json::Value> = map
            .values()
            .flat_map(|k| k.jwks["keys"].as_array().cloned().unwrap_or_default())
            .collect();
        let union: JwkSet = serde_json::from_value(json!({ "keys": all }))?;
        self.realms.store(Arc::new(map));
        self.union.store(Arc::new(union));
        self.version.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    pub fn realm(&self, realm: &str) -> Option<Arc<RealmKeys>> {
        self.realms.load().get(realm).cloned()
    }

    /// Every realm's published keys, for the gateway's in-process token validation.
    pub fn key_set(&self) -> Arc<JwkSet> {
        self.union.load_full()
    }

    /// Bumped whenever any realm's keys change.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }
}

/// A realm without an active key of `alg` gets one, made once however many replicas find it
/// missing at the same time (`Store::ensure_active_key`); a replica that lost the race waits
/// (bounded) for the winner's key. Answers the realm's key rows afterwards.
async fn ensure(
    store: &dyn Store,
    realm: &str,
    alg: &str,
    now: i64,
) -> anyhow::Result<Vec<KeyRow>> {
    let (r, a) = (realm.to_string(), alg.to_string());
    let key = tokio::task::spawn_blocking(move || generate(&r, &a, now)).await??;
    let added = store.ensure_active_key(&key).await?;
    let mut rows = store.list_keys(realm).await?;
    for _ in 0..if added { 0 } else { 50 } {
        if rows.iter().any(|k| k.active && k.alg == alg) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        rows = store.list_keys(realm).await?;
    }
    Ok(rows)
}

/// Makes a new active key for `realm`; the old ones stay published for the grace period.
pub async fn rotate(store: &dyn Store, realm: &str, alg: &str, now: i64) -> anyhow::Result<String> {
    let (r, a) = (realm.to_string(), alg.to_string());
    let key = tokio::task::spawn_blocking(move || generate(&r, &a, now)).await??;
    store.add_active_key(&key).await?;
    Ok(key.kid)
}

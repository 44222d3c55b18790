//! Sealing (AES-256-GCM) with keys derived from a realm's signing keys: the sign-in flow's
//! cookie and TOTP secrets at rest. Every replica derives the same keys from the store's rows,
//! nothing new is stored, and the sealed text names the key row it used, so a key rotation
//! leaves what was sealed before readable (key rows are never deleted). `aad` binds a sealed
//! text to its use: one sealed for the cookie does not open as a TOTP secret.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secrets;
use portcullis_store::KeyRow;

/// A realm's sealing keys, one per signing-key row, by the row's `kid`.
pub struct SealKeys {
    active: String,
    keys: Vec<(String, LessSafeKey)>,
}

impl SealKeys {
    /// The keys of every row; new texts are sealed with `active`'s.
    pub fn derive(realm: &str, rows: &[KeyRow], active: &str) -> anyhow::Result<SealKeys> {
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let k = secrets::derive_key(
                row.private_der.expose(),
                "portcullis seal AES-256-GCM",
                realm,
            )?;
            let key = UnboundKey::new(&AES_256_GCM, &k[..32])
                .map_err(|_| anyhow::anyhow!("sealing key"))?;
            keys.push((row.kid.clone(), LessSafeKey::new(key)));
        }
        Ok(SealKeys {
            active: active.to_string(),
            keys,
        })
    }

    /// `kid.base64url(nonce ‖ ciphertext ‖ tag)`.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> anyhow::Result<String> {
        let (kid, key) = self
            .keys
            .iter()
            .find(|(k, _)| *k == self.active)
            .ok_or_else(|| anyhow::anyhow!("no active sealing key"))?;
        let nonce = secrets::random_bytes::<NONCE_LEN>()?;
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut buf,
        )
        .map_err(|_| anyhow::anyhow!("seal failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{kid}.{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// The plain text, or `None` for anything not sealed by us for `aad` (tampered, unknown key,
    /// malformed).
    pub fn open(&self, aad: &str, sealed: &str) -> Option<Vec<u8>> {
        let (kid, body) = sealed.rsplit_once('.')?;
        let (_, key) = self.keys.iter().find(|(k, _)| k == kid)?;
        let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ct.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_store::Secret;

    fn row(kid: &str, der: &[u8]) -> KeyRow {
        KeyRow {
            kid: kid.into(),
            realm: "r".into(),
            alg: "RS256".into(),
            private_der: Secret(der.to_vec()),
            created_at: 0,
            active: true,
            retired_at: None,
        }
    }

    #[test]
    fn seals_open_only_with_their_key_and_purpose() {
        let old = SealKeys::derive("r", &[row("a", b"one")], "a").unwrap();
        let both = SealKeys::derive("r", &[row("a", b"one"), row("b", b"two")], "b").unwrap();
        let s = old.seal("flow", b"hello").unwrap();
        assert_eq!(both.open("flow", &s).unwrap(), b"hello", "after a rotation");
        assert!(both.open("otp", &s).is_none(), "another purpose");
        let other_realm = SealKeys::derive("q", &[row("a", b"one")], "a").unwrap();
        assert!(other_realm.open("flow", &s).is_none());
        let mut t = s.clone();
        t.pop();
        assert!(old.open("flow", &t).is_none(), "tampered");
        assert!(old.open("flow", "a.").is_none() && old.open("flow", "x").is_none());
        assert!(both.seal("flow", b"x").unwrap().starts_with("b."));
    }
}

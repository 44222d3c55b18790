//! Password and client-secret hashing, token randomness and constant-time comparison.

mod blamka;

use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Keycloak's argon2 defaults: argon2id, 7 MiB, 5 iterations, parallelism 1.
fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(7168, 5, 1, None).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string. CPU-heavy: call from `spawn_blocking`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = random_bytes::<16>()?;
    let hash = argon2()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

/// Checks a password against a PHC string with the hash's own parameters (Keycloak realm files
/// carry hashes of any cost); any malformed hash is a mismatch. CPU-heavy: call from
/// `spawn_blocking`.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if let Some(ok) = verify_argon2_fast(password.as_bytes(), phc) {
        return ok;
    }
    argon2().is_ok_and(|a| a.verify_password(password.as_bytes(), phc).is_ok())
}

/// The AVX2 path for argon2 v1.3 hashes without secret or associated data (every hash Keycloak
/// or we write). `None` when it does not apply; the `argon2` crate then decides, rejecting what
/// is malformed.
fn verify_argon2_fast(password: &[u8], phc: &str) -> Option<bool> {
    let hash = argon2::PasswordHash::new(phc).ok()?;
    let alg = Algorithm::new(hash.algorithm.as_str()).ok()?;
    if !matches!(hash.version, None | Some(0x13)) {
        return None;
    }
    let params = Params::try_from(&hash).ok()?;
    let (salt, expected) = (hash.salt.as_ref()?, hash.hash.as_ref()?);
    if salt.as_ref().len() < argon2::MIN_SALT_LEN || !params.keyid().is_empty() {
        return None;
    }
    let mut out = vec![0u8; expected.len()];
    blamka::compute(alg, &params, password, salt.as_ref(), &mut out)?;
    Some(out.as_slice().ct_eq(expected.as_bytes()).into())
}

/// A hash to verify against when the user does not exist, so the answer takes as long.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash_password("portcullis-dummy").unwrap_or_default());
    &DUMMY
}

/// Client secrets are long random strings in practice, so a salted SHA-256 is enough and keeps
/// `client_credentials` fast (argon2 there would cap the grant at ~50/s per core).
pub fn hash_client_secret(secret: &str) -> anyhow::Result<String> {
    let salt = URL_SAFE_NO_PAD.encode(random_bytes::<16>()?);
    Ok(format!("sha256${salt}${}", salted_digest(&salt, secret)))
}

/// Constant-time check of a presented client secret against the stored `sha256$salt$digest`.
pub fn verify_client_secret(secret: &str, stored: &str) -> bool {
    let mut parts = stored.splitn(3, '$');
    let (Some("sha256"), Some(salt), Some(digest)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    salted_digest(salt, secret)
        .as_bytes()
        .ct_eq(digest.as_bytes())
        .into()
}

fn salted_digest(salt: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"$");
    h.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// SHA-256, base64url: how codes, refresh tokens and cookies are stored.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow::anyhow!("system random unavailable"))?;
    Ok(b)
}

/// A random URL-safe token with 256 bits of entropy.
pub fn random_token() -> anyhow::Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A random UUID (v4) string, the shape Keycloak uses for ids.
pub fn uuid() -> anyhow::Result<String> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Constant-time string equality (lengths may leak, contents do not).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_uses_keycloak_parameters_and_verifies() {
        let h = hash_password("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert!(verify_password("pw", &h));
        assert!(!verify_password("pW", &h));
        assert!(!verify_password("pw", "garbage"));
    }

    #[test]
    fn hashes_with_their_own_parameters_verify_on_both_paths() {
        // Keycloak realm files carry hashes of other costs and types; each verifies with its own.
        for (alg, m, t, p, len) in [
            (Algorithm::Argon2id, 7168, 5, 1, 32),
            (Algorithm::Argon2id, 64, 2, 2, 16),
            (Algorithm::Argon2i, 256, 3, 1, 64),
            (Algorithm::Argon2d, 96, 1, 3, 40),
        ] {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let h = Argon2::new(alg, Version::V0x13, params)
                .hash_password_with_salt(b"pw", b"0123456789abcdef")
                .unwrap()
                .to_string();
            assert!(verify_password("pw", &h), "{h}");
            assert!(!verify_password("pX", &h), "{h}");
            if blamka::available() {
                assert_eq!(verify_argon2_fast(b"pw", &h), Some(true), "{h}");
            }
        }
        // Version 0x10 is left to the crate.
        let params = Params::new(64, 1, 1, None).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x10, params)
            .hash_password_with_salt(b"pw", b"0123456789abcdef")
            .unwrap()
            .to_string();
        assert_eq!(verify_argon2_fast(b"pw", &old), None);
        assert!(verify_password("pw", &old));
    }

    #[test]
    fn client_secret_hash_is_salted_and_checked() {
        let a = hash_client_secret("s").unwrap();
        let b = hash_client_secret("s").unwrap();
        assert_ne!(a, b);
        assert!(verify_client_secret("s", &a) && verify_client_secret("s", &b));
        assert!(!verify_client_secret("t", &a));
        assert!(!verify_client_secret("s", "plain"));
    }

    #[test]
    fn uuid_shape() {
        let u = uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}

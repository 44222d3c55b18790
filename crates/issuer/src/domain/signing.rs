//! Signing key material for RS256 (RSA-2048), ES256 (P-256) and EdDSA (Ed25519), all from
//! aws-lc-rs: generation, PKCS#8 storage, public JWKs with RFC 7638 thumbprints as `kid`, and
//! compact JWS signing. The parsed key stays in memory, so signing does no key parsing.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use aws_lc_rs::{rand::SystemRandom, rsa};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The algorithms a realm may sign with (Keycloak's `defaultSignatureAlgorithm`).
pub const ALGORITHMS: &[&str] = &["RS256", "ES256", "EdDSA"];

enum Key {
    Rsa(rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed private key with its `kid` and algorithm.
pub struct Signer {
    pub kid: String,
    pub alg: &'static str,
    key: Key,
    /// The base64url JWS header of `typ` "JWT" (every token the issuer mints), encoded once.
    jwt_header: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn err(what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what} failed")
}

/// A new key for `alg`, as PKCS#8 DER.
pub fn generate(alg: &str) -> anyhow::Result<Vec<u8>> {
    Ok(match alg {
        "RS256" => rsa::KeyPair::generate(rsa::KeySize::Rsa2048)
            .map_err(|_| err("RSA keygen"))?
            .as_der()
            .map_err(|_| err("RSA key encoding"))?
            .as_ref()
            .to_vec(),
        "ES256" => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| err("EC keygen"))?
            .to_pkcs8v1()
            .map_err(|_| err("EC key encoding"))?
            .as_ref()
            .to_vec(),
        "EdDSA" => Ed25519KeyPair::generate()
            .map_err(|_| err("Ed25519 keygen"))?
            .to_pkcs8()
            .map_err(|_| err("Ed25519 key encoding"))?
            .as_ref()
            .to_vec(),
        other => anyhow::bail!("unsupported signature algorithm {other}"),
    })
}

impl Signer {
    /// Parses a stored key; the `kid` is its thumbprint.
    pub fn from_pkcs8(alg: &str, der: &[u8]) -> anyhow::Result<Self> {
        let (alg, key) = match alg {
            "RS256" => (
                "RS256",
                Key::Rsa(rsa::KeyPair::from_pkcs8(der).map_err(|_| err("RSA key parsing"))?),
            ),
            "ES256" => (
                "ES256",
                Key::Ec(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                        .map_err(|_| err("EC key parsing"))?,
                ),
            ),
            "EdDSA" => (
                "EdDSA",
                Key::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(|_| err("Ed25519 key parsing"))?),
            ),
            other => anyhow::bail!("unsupported signature algorithm {other}"),
        };
        let mut s = Self {
            kid: String::new(),
            alg,
            key,
            jwt_header: String::new(),
        };
        s.kid = s.thumbprint();
        s.jwt_header = s.header("JWT")?;
        Ok(s)
    }

    /// The public key's JWK members (without `kid`, `alg`, `use`), in RFC 7638 order.
    fn members(&self) -> Vec<(&'static str, String)> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match &self.key {
            Key::Rsa(k) => {
                let p = k.public_key();
                vec![
                    ("e", b64(p.exponent().big_endian_without_leading_zero())),
                    ("kty", "RSA".into()),
                    ("n", b64(p.modulus().big_endian_without_leading_zero())),
                ]
            }
            Key::Ec(k) => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = k.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(point.len().saturating_sub(1) / 2);
                vec![
                    ("crv", "P-256".into()),
                    ("kty", "EC".into()),
                    ("x", b64(x)),
                    ("y", b64(y)),
                ]
            }
            Key::Ed(k) => vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", b64(k.public_key().as_ref())),
            ],
        }
    }

    /// RFC 7638 JWK thumbprint: stable and collision-free, so a good `kid`.
    fn thumbprint(&self) -> String {
        let body: Vec<String> = self
            .members()
            .iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect();
        URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{{{}}}", body.join(",")).as_bytes()))
    }

    pub fn public_jwk(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("kid".into(), self.kid.clone().into());
        m.insert("alg".into(), self.alg.into());
        m.insert("use".into(), "sig".into());
        for (k, v) in self.members() {
            m.insert(k.into(), v.into());
        }
        Value::Object(m)
    }

    /// The public key as DER SubjectPublicKeyInfo (Keycloak's realm `public_key`, base64).
    pub fn public_key_der(&self) -> anyhow::Result<Vec<u8>> {
        let der: PublicKeyX509Der<'static> = match &self.key {
            Key::Rsa(k) => k.public_key().as_der(),
            Key::Ec(k) => k.public_key().as_der(),
            Key::Ed(k) => k.public_key().as_der(),
        }
        .map_err(|_| err("public key encoding"))?;
        Ok(der.as_ref().to_vec())
    }

    /// The base64url JWS header for `typ`.
    fn header(&self, typ: &str) -> anyhow::Result<String> {
        let header = json!({"alg": self.alg, "typ": typ, "kid": self.kid});
        Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?))
    }

    /// A compact JWS of `claims`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        let payload = serde_json::to_vec(claims)?;
        // Header, payload and an RSA-2048 signature (342 characters) in one allocation.
        let mut out = String::with_capacity(self.jwt_header.len() + payload.len() * 4 / 3 + 352);
        if typ == "JWT" {
            out.push_str(&self.jwt_header);
        } else {
            out.push_str(&self.header(typ)?);
        }
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let sig = match &self.key {
            Key::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    out.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| err("RSA signing"))?;
                sig
            }
            Key::Ec(k) => k
                .sign(&SystemRandom::new(), out.as_bytes())
                .map_err(|_| err("ECDSA signing"))?
                .as_ref()
                .to_vec(),
            Key::Ed(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};

    #[test]
    fn every_algorithm_verifies_with_its_published_jwk() {
        for (alg, jalg) in [
            ("RS256", Algorithm::RS256),
            ("ES256", Algorithm::ES256),
            ("EdDSA", Algorithm::EdDSA),
        ] {
            let der = generate(alg).unwrap();
            let s = Signer::from_pkcs8(alg, &der).unwrap();
            assert_eq!(
                Signer::from_pkcs8(alg, &der).unwrap().kid,
                s.kid,
                "kid is stable"
            );
            let token = s.sign("JWT", &json!({"sub": "x"})).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(s.public_jwk()).unwrap();
            let mut v = Validation::new(jalg);
            v.validate_aud = false;
            v.required_spec_claims.clear();
            let data = decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &v).unwrap();
            assert_eq!(data.claims["sub"], "x");
            assert_eq!(data.header.kid.as_deref(), Some(s.kid.as_str()));
            assert!(!format!("{s:?}").contains("key"));
            if alg == "RS256" {
                // The SPKI form verifies what the JWK verifies.
                let pem = format!(
                    "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                    base64::engine::general_purpose::STANDARD.encode(s.public_key_der().unwrap())
                );
                let key = DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
                decode::<Value>(&token, &key, &v).unwrap();
            } else {
                assert!(!s.public_key_der().unwrap().is_empty());
            }
        }
        assert!(generate("HS256").is_err());
    }
}

//! TOTP (RFC 6238, `totp-rs`) without the store: Keycloak's `otp` credential shapes
//! (`secretData`, `credentialData`), codes under the realm's `otpPolicy*`, new secrets and the
//! enrollment's `otpauth://` URI and QR code (inline SVG). `otp` checks and stores them.
//!
//! A secret's `value` is the raw secret string (Keycloak's form) unless
//! `credentialData.secretEncoding` says `BASE32`.

use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder, Totp};

use crate::secrets;
use portcullis_store::AccountSettings;

/// The credential type Keycloak names TOTP (and HOTP) credentials with.
pub const TYPE: &str = "otp";
/// What the sealed secret is bound to (`seal`'s `aad`).
pub const SEAL_AAD: &str = "otp secretData";

/// Keycloak's `credentialData` of an `otp` credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpData {
    pub sub_type: String,
    pub digits: u8,
    #[serde(default)]
    pub counter: i64,
    pub period: u64,
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_encoding: Option<String>,
}

/// Keycloak's `secretData` of an `otp` credential.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OtpSecret {
    pub value: String,
}

impl OtpData {
    /// A new credential's data under the realm's policy.
    pub fn of_policy(s: &AccountSettings) -> OtpData {
        OtpData {
            sub_type: "totp".into(),
            digits: u8::try_from(s.otp_policy_digits).unwrap_or(6).clamp(6, 8),
            counter: 0,
            period: u64::try_from(s.otp_policy_period).unwrap_or(30).max(1),
            algorithm: s.otp_policy_algorithm.clone(),
            secret_encoding: None,
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self.algorithm.as_str() {
            "HmacSHA256" => Algorithm::SHA256,
            "HmacSHA512" => Algorithm::SHA512,
            _ => Algorithm::SHA1,
        }
    }

    /// The secret's key bytes; `None` for a malformed base32 value.
    fn key(&self, secret: &str) -> Option<Vec<u8>> {
        match self.secret_encoding.as_deref() {
            Some(e) if e.eq_ignore_ascii_case("BASE32") => totp_rs::Secret::try_from_base32(secret)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            _ => Some(secret.as_bytes().to_vec()),
        }
    }

    /// The generator, `look` steps either side accepted. `None` when the data is unusable (a
    /// hand-edited realm file): such a credential never matches.
    fn generator(&self, secret: &str, look: u16) -> Option<Totp> {
        if !(6..=8).contains(&self.digits) || self.period == 0 || self.sub_type != "totp" {
            return None;
        }
        Some(
            Builder::new()
                .with_algorithm(self.algorithm())
                .with_digits(self.digits)
                .with_step_duration(self.period)
                .with_skew(look)
                .with_secret(self.key(secret)?)
                .build_noncompliant(),
        )
    }

    /// The time step `code` matches at `now` within `look` steps, if any.
    pub fn matching_step(&self, secret: &str, code: &str, now: i64, look: i64) -> Option<i64> {
        let look = u16::try_from(look.clamp(0, 10)).unwrap_or(1);
        let now = u64::try_from(now).ok()?;
        let step = self.generator(secret, look)?.check(code.trim(), now)?;
        i64::try_from(step).ok()
    }

    /// The code at `now` (tests compute what an app would show).
    #[cfg(test)]
    pub fn code_at(&self, secret: &str, now: i64) -> Option<String> {
        let now = u64::try_from(now).ok()?;
        Some(self.generator(secret, 0)?.generate(now).to_string())
    }
}

/// A new secret in Keycloak's form: 20 random letters and digits (~119 bits), raw.
pub fn new_secret() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        for b in secrets::random_bytes::<32>()? {
            // 62 × 4 = 248: rejecting 248..=255 keeps every character equally likely.
            if b < 248 && out.len() < 20 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// What the enrollment page shows: the secret in base32 (for typing) and the `otpauth://` URI
/// as an inline SVG QR code.
pub struct Enrollment {
    pub base32: String,
    pub uri: String,
    pub qr_svg: String,
}

/// The enrollment of `secret` for `account` of the realm whose display name is `issuer`.
pub fn enrollment(
    s: &AccountSettings,
    issuer: &str,
    account: &str,
    secret: &str,
) -> anyhow::Result<Enrollment> {
    let data = OtpData::of_policy(s);
    // The URI's label separates issuer and account with a colon; neither may hold one.
    let clean = |x: &str| x.replace(':', " ");
    let totp = Builder::new()
        .with_algorithm(data.algorithm())
        .with_digits(data.digits)
        .with_step_duration(data.period)
        .with_secret(secret.as_bytes().to_vec())
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build_noncompliant();
    let uri = totp
        .to_url()
        .map_err(|e| anyhow::anyhow!("otpauth URI: {e}"))?;
    let code = qrcode::QrCode::new(uri.as_bytes())?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    // Inline in the page: no XML declaration, and a text alternative.
    let svg = svg
        .split_once("?>")
        .map_or(svg.as_str(), |(_, rest)| rest)
        .replacen(
            "<svg ",
            "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" ",
            1,
        );
    Ok(Enrollment {
        base32: totp.secret().to_base32(),
        uri,
        qr_svg: svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors_and_the_window() {
        // RFC 6238 appendix B, SHA-1, 8 digits, the ASCII secret "12345678901234567890".
        let data = OtpData {
            sub_type: "totp".into(),
            digits: 8,
            counter: 0,
            period: 30,
            algorithm: "HmacSHA1".into(),
            secret_encoding: None,
        };
        let secret = "12345678901234567890";
        assert_eq!(data.code_at(secret, 59).unwrap(), "94287082");
        assert_eq!(data.code_at(secret, 1_111_111_109).unwrap(), "07081804");
        assert_eq!(data.matching_step(secret, "94287082", 59, 0), Some(1));
        // One step later it is still accepted with a window of 1, not with 0; two steps later
        // not at all.
        assert_eq!(data.matching_step(secret, "94287082", 89, 1), Some(1));
        assert_eq!(data.matching_step(secret, "94287082", 89, 0), None);
        assert_eq!(data.matching_step(secret, "94287082", 119, 1), None);
        assert_eq!(data.matching_step(secret, "not a code", 59, 1), None);
        let b32 = OtpData {
            secret_encoding: Some("BASE32".into()),
            ..data.clone()
        };
        assert_eq!(
            b32.code_at("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59).unwrap(),
            "94287082"
        );
    }

    #[test]
    fn secrets_are_keycloak_shaped_and_enrollment_renders() {
        let s = new_secret().unwrap();
        assert_eq!(s.len(), 20);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, new_secret().unwrap());
        let e = enrollment(&AccountSettings::default(), "My: Realm", "alice", &s).unwrap();
        assert!(e.uri.starts_with("otpauth://totp/"), "{}", e.uri);
        assert!(e.uri.contains(&format!("secret={}", e.base32)));
        assert!(
            e.qr_svg.starts_with("<svg role=\"img\""),
            "{}",
            &e.qr_svg[..40]
        );
    }
}

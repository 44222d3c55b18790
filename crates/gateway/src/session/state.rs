//! What a sealed cookie holds. A session cookie opens to a fixed header (version, session id,
//! revision, created, last seen), which is all a request with a cached session reads, then a
//! JSON body with the tokens and who they stand for (empty with `store = "database"`, where
//! the body is in the database). A pre-auth cookie holds one sign-in's `state`, `nonce`, PKCE
//! verifier and return URL.

use std::fmt;

use serde::{Deserialize, Serialize};

/// AEAD purposes: a value sealed for one never opens as the other.
pub const SESSION_PURPOSE: &[u8] = b"portcullis session v1";
pub const PRE_AUTH_PURPOSE: &[u8] = b"portcullis pre-auth v1";

const VERSION: u8 = 1;
pub const SID_LEN: usize = 16;
const HEADER_LEN: usize = 1 + SID_LEN + 4 + 8 + 8;

/// A session's random id.
pub type Sid = [u8; SID_LEN];

/// The fixed part of a session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub sid: Sid,
    /// Bumped by each refresh: a cookie older than the cached session is re-sealed.
    pub rev: u32,
    /// Unix seconds: sign-in, and the last request that re-sealed the cookie.
    pub created: u64,
    pub seen: u64,
}

impl Header {
    /// `header ‖ body`, the plaintext of a session cookie.
    pub fn encode(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.push(VERSION);
        out.extend_from_slice(&self.sid);
        out.extend_from_slice(&self.rev.to_be_bytes());
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.seen.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// The header and the body of an opened session cookie.
    pub fn decode(plain: &[u8]) -> Option<(Header, &[u8])> {
        if plain.len() < HEADER_LEN || plain[0] != VERSION {
            return None;
        }
        let (head, body) = plain.split_at(HEADER_LEN);
        let mut sid = [0u8; SID_LEN];
        sid.copy_from_slice(&head[1..1 + SID_LEN]);
        let at = 1 + SID_LEN;
        let rev = u32::from_be_bytes(head[at..at + 4].try_into().ok()?);
        let created = u64::from_be_bytes(head[at + 4..at + 12].try_into().ok()?);
        let seen = u64::from_be_bytes(head[at + 12..at + 20].try_into().ok()?);
        Some((
            Header {
                sid,
                rev,
                created,
                seen,
            },
            body,
        ))
    }
}

/// Who a session stands for, from its ID token (and access token) at sign-in or refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    pub iss: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A session's tokens and identity: the body of its cookie (or database row).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The access token.
    pub at: String,
    /// Unix seconds when it expires, and its lifetime when issued.
    pub at_exp: u64,
    pub at_life: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rt: Option<String>,
    /// The ID token, for the provider's end-session endpoint (`id_token_hint`): kept in memory
    /// and in a database row, never sealed into a cookie (it would double the cookie's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub it: Option<String>,
    pub who: Who,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("at", &"***")
            .field("at_exp", &self.at_exp)
            .field("at_life", &self.at_life)
            .field("rt", &self.rt.as_ref().map(|_| "***"))
            .field("it", &self.it.as_ref().map(|_| "***"))
            .field("who", &self.who)
            .finish()
    }
}

/// One sign-in in progress, sealed into the browser that started it.
#[derive(Clone, Serialize, Deserialize)]
pub struct PreAuth {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Path and query to return to, same-origin.
    pub rd: String,
    /// The callback URL sent as `redirect_uri` (the code exchange must repeat it).
    pub redirect_uri: String,
    /// Unix seconds after which the sign-in has expired.
    pub exp: u64,
}

impl fmt::Debug for PreAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreAuth")
            .field("rd", &self.rd)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// `n` random bytes as base64url (state, nonce, PKCE verifier), or `None` without randomness.
pub fn random_token<const N: usize>() -> Option<String> {
    use base64::Engine;
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// A new session id.
pub fn new_sid() -> Option<Sid> {
    let mut sid = [0u8; SID_LEN];
    aws_lc_rs::rand::fill(&mut sid).ok()?;
    Some(sid)
}

/// Constant-time equality of two secrets (state, nonce, CSRF tokens).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_round_trips_and_junk_does_not_decode() {
        let h = Header {
            sid: [9; SID_LEN],
            rev: 3,
            created: 1_700_000_000,
            seen: 1_700_000_100,
        };
        let plain = h.encode(b"{}");
        assert_eq!(Header::decode(&plain), Some((h, &b"{}"[..])));
        assert_eq!(Header::decode(&plain[..HEADER_LEN - 1]), None);
        let mut other_version = plain.clone();
        other_version[0] = 2;
        assert_eq!(Header::decode(&other_version), None);
    }

    #[test]
    fn secrets_never_print() {
        let b = Body {
            at: "ACCESS".into(),
            at_exp: 1,
            at_life: 1,
            rt: Some("REFRESH".into()),
            it: Some("IDTOKEN".into()),
            who: Who {
                iss: "i".into(),
                sub: "s".into(),
                name: None,
                email: None,
                groups: vec![],
                roles: vec![],
            },
        };
        let p = PreAuth {
            state: "STATE".into(),
            nonce: "NONCE".into(),
            verifier: "VERIFIER".into(),
            rd: "/".into(),
            redirect_uri: "https://h/cb".into(),
            exp: 0,
        };
        let printed = format!("{b:?} {p:?}");
        for secret in ["ACCESS", "REFRESH", "IDTOKEN", "STATE", "NONCE", "VERIFIER"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("abc", "ab"));
    }
}

//! Cookie keys and sealing. Keys come from the `cookie_keys` file (standard base64 32-byte
//! keys, one a line, padding optional): the first seals, all of them open, so a new key goes
//! first and the old one stays below it until every cookie it sealed has expired. Sealing is
//! AES-256-GCM from aws-lc-rs with a random nonce per cookie (`RandomizedNonceKey`); the
//! cookie's purpose is the AEAD's associated data, so a pre-auth cookie never opens as a
//! session. A sealed value is `base64url(key id ‖ nonce ‖ ciphertext ‖ tag)`.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT, URL_SAFE_NO_PAD};
use portcullis_core::config::{Diagnostic, Diagnostics, Severity};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes naming the key that sealed a value, so opening tries one key, not all.
const ID_LEN: usize = 4;
const TAG_LEN: usize = 16;
/// More keys than this is a file that was never pruned; each costs nothing but memory.
const MAX_KEYS: usize = 16;

/// One key, with the id its sealed values carry.
struct Key {
    id: [u8; ID_LEN],
    aead: RandomizedNonceKey,
}

/// The keys of one `cookie_keys` file, in file order.
pub struct Keys {
    keys: Vec<Key>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} keys)", self.keys.len())
    }
}

/// Why a value did not open: never told to the client, only counted as "no session".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOpened;

impl Keys {
    /// Keys from raw 32-byte values (the first seals).
    pub fn from_raw(raw: &[[u8; KEY_LEN]]) -> Option<Keys> {
        let keys = raw
            .iter()
            .map(|k| {
                Some(Key {
                    id: key_id(k),
                    aead: RandomizedNonceKey::new(&AES_256_GCM, k).ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        (!keys.is_empty()).then_some(Keys { keys })
    }

    /// Reads the keys file; every bad line is reported at its place. A missing file is
    /// generated with one fresh key (and a warning: replicas must share the file).
    pub fn load(path: &Path, diags: &mut Diagnostics) -> Option<Keys> {
        if !path.exists() {
            match generate(path) {
                Ok(()) => diags.push(
                    Diagnostic::file_warning(path, "session.cookie_keys did not exist: generated one key")
                        .with_hint("every replica must use the same file; add a new key as the first line to rotate"),
                ),
                Err(e) => {
                    diags.push(Diagnostic::file_error(
                        path,
                        format!("session.cookie_keys: cannot create the keys file: {e}"),
                    ));
                    return None;
                }
            }
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::file_error(
                    path,
                    format!("session.cookie_keys: cannot read: {e}"),
                ));
                return None;
            }
        };
        warn_if_readable_by_others(path, diags);
        let raw = parse(path, &text, diags)?;
        Keys::from_raw(&raw)
    }

    /// How many keys open values.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Seals `plain` for `purpose` with the first key.
    pub fn seal(&self, purpose: &[u8], mut plain: Vec<u8>) -> Option<String> {
        let key = self.keys.first()?;
        let nonce = key
            .aead
            .seal_in_place_append_tag(Aad::from(purpose), &mut plain)
            .ok()?;
        let mut out = Vec::with_capacity(ID_LEN + NONCE_LEN + plain.len());
        out.extend_from_slice(&key.id);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&plain);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for `purpose` by any of the keys; anything else is `NotOpened`.
    pub fn open(&self, purpose: &[u8], sealed: &str) -> Result<Vec<u8>, NotOpened> {
        let mut raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| NotOpened)?;
        if raw.len() < ID_LEN + NONCE_LEN + TAG_LEN {
            return Err(NotOpened);
        }
        let id = &raw[..ID_LEN];
        let mut candidates = self.keys.iter().filter(|k| k.id == *id);
        let Some(first) = candidates.next() else {
            return Err(NotOpened);
        };
        // Ids are 32 bits: two keys may share one, so each that does is tried (on a copy, as a
        // failed open may leave the buffer changed). The usual single candidate opens in place.
        for other in candidates {
            let mut copy = raw.clone();
            if let Some(len) = open_at(other, purpose, &mut copy) {
                copy.truncate(len);
                copy.drain(..ID_LEN + NONCE_LEN);
                return Ok(copy);
            }
        }
        let len = open_at(first, purpose, &mut raw).ok_or(NotOpened)?;
        raw.truncate(len);
        raw.drain(..ID_LEN + NONCE_LEN);
        Ok(raw)
    }
}

/// Opens `raw` (`id ‖ nonce ‖ ciphertext ‖ tag`) in place with `key`: the plaintext is then
/// `raw[ID_LEN + NONCE_LEN..len]` for the returned `len`.
fn open_at(key: &Key, purpose: &[u8], raw: &mut [u8]) -> Option<usize> {
    let (head, body) = raw.split_at_mut(ID_LEN + NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&head[ID_LEN..]).ok()?;
    let plain = key
        .aead
        .open_in_place(nonce, Aad::from(purpose), body)
        .ok()?;
    Some(ID_LEN + NONCE_LEN + plain.len())
}

/// A key's id: the first bytes of SHA-256 over a label and the key (it reveals nothing of it).
fn key_id(key: &[u8; KEY_LEN]) -> [u8; ID_LEN] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"portcullis cookie key id\0");
    ctx.update(key);
    let d = ctx.finish();
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&d.as_ref()[..ID_LEN]);
    id
}

/// The keys of a file's text; `#` starts a comment line, blank lines are skipped.
fn parse(path: &Path, text: &str, diags: &mut Diagnostics) -> Option<Vec<[u8; KEY_LEN]>> {
    let errors_before = diags.errors().count();
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let col = line.len() - line.trim_start().len() + 1;
        let at = |message: String| Diagnostic {
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            ..Diagnostic::file_error(path, message)
        };
        match STANDARD_PAD_INDIFFERENT.decode(t) {
            Ok(k) if k.len() == KEY_LEN => {
                let mut key = [0u8; KEY_LEN];
                key.copy_from_slice(&k);
                if keys.contains(&key) {
                    diags.push(at("the same key is listed twice".into()));
                }
                keys.push(key);
            }
            Ok(k) => diags.push(
                at(format!(
                    "a cookie key must be {KEY_LEN} bytes, this one is {}",
                    k.len()
                ))
                .with_hint("make one with: head -c 32 /dev/urandom | base64"),
            ),
            Err(_) => diags.push(
                at("not standard base64".into())
                    .with_hint("one key a line, e.g. from: head -c 32 /dev/urandom | base64"),
            ),
        }
    }
    if keys.is_empty() && diags.errors().count() == errors_before {
        diags.push(
            Diagnostic::file_error(path, "session.cookie_keys holds no key")
                .with_hint("add one: head -c 32 /dev/urandom | base64 >> the file"),
        );
    }
    if keys.len() > MAX_KEYS {
        diags.push(Diagnostic::file_error(
            path,
            format!("session.cookie_keys holds more than {MAX_KEYS} keys; remove retired ones"),
        ));
    }
    (diags.errors().count() == errors_before).then_some(keys)
}

/// Writes a new file with one random key, readable by its owner only.
fn generate(path: &Path) -> std::io::Result<()> {
    let mut key = [0u8; KEY_LEN];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| std::io::Error::other("no randomness"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    writeln!(
        f,
        "# portcullis session cookie keys: the first seals, all open.\n{}",
        STANDARD.encode(key)
    )?;
    f.sync_all()
}

/// Anyone who can read the keys can forge sessions: say so when others can.
fn warn_if_readable_by_others(path: &Path, diags: &mut Diagnostics) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            diags.push(
                Diagnostic {
                    severity: Severity::Warning,
                    ..Diagnostic::file_error(
                        path,
                        "session.cookie_keys is readable by other users: anyone who reads it can forge sessions",
                    )
                }
                .with_hint("chmod 600 the file"),
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, diags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(raw: &[u8]) -> Keys {
        Keys::from_raw(&raw.iter().map(|b| [*b; KEY_LEN]).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let old = keys(&[1]);
        let sealed_old = old.seal(b"s", b"hello".to_vec()).unwrap();
        let rotated = keys(&[2, 1]);
        assert_eq!(rotated.open(b"s", &sealed_old).unwrap(), b"hello");
        let sealed_new = rotated.seal(b"s", b"again".to_vec()).unwrap();
        assert_eq!(rotated.open(b"s", &sealed_new).unwrap(), b"again");
        assert_eq!(old.open(b"s", &sealed_new), Err(NotOpened), "unknown key");
        assert_eq!(
            keys(&[2]).open(b"s", &sealed_old),
            Err(NotOpened),
            "removed key"
        );
    }

    #[test]
    fn tampering_and_another_purpose_do_not_open() {
        let k = keys(&[7]);
        let sealed = k.seal(b"session", vec![0u8; 100]).unwrap();
        assert_eq!(k.open(b"pre-auth", &sealed), Err(NotOpened));
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for i in [0, 5, 20, raw.len() - 1] {
            raw[i] ^= 1;
            assert_eq!(
                k.open(b"session", &URL_SAFE_NO_PAD.encode(&raw)),
                Err(NotOpened)
            );
            raw[i] ^= 1;
        }
        for junk in ["", "!!!", "AAAA", &sealed[..sealed.len() - 3]] {
            assert_eq!(k.open(b"session", junk), Err(NotOpened));
        }
        // Two seals of one value differ (random nonces).
        assert_ne!(k.seal(b"s", b"x".to_vec()), k.seal(b"s", b"x".to_vec()));
    }

    #[test]
    fn the_file_is_checked_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let good = STANDARD.encode([3u8; 32]);
        let unpadded = good.trim_end_matches('=');
        std::fs::write(
            &path,
            format!("# c\n{good}\n\n  {unpadded}!\nc2hvcnQ=\n{good}\n"),
        )
        .unwrap();
        let mut d = Diagnostics::default();
        assert!(Keys::load(&path, &mut d).is_none());
        let errs: Vec<String> = d.errors().map(|e| e.to_string()).collect();
        let file = path.display();
        assert!(
            errs[0].starts_with(&format!("{file}:4:3: not standard base64")),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with(&format!("{file}:5:1: a cookie key must be 32 bytes")),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with(&format!("{file}:6:1: the same key is listed twice")),
            "{errs:?}"
        );

        std::fs::write(
            &path,
            format!("{unpadded}\n{}\n", STANDARD.encode([4u8; 32])),
        )
        .unwrap();
        let mut d = Diagnostics::default();
        assert_eq!(Keys::load(&path, &mut d).unwrap().len(), 2);
    }

    #[test]
    fn a_missing_file_is_generated_for_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certs/session-keys");
        let mut d = Diagnostics::default();
        let k = Keys::load(&path, &mut d).unwrap();
        assert_eq!(k.len(), 1);
        assert!(!d.has_errors());
        assert_eq!(d.warnings().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The same file opens what the first load sealed.
        let sealed = k.seal(b"s", b"v".to_vec()).unwrap();
        let again = Keys::load(&path, &mut Diagnostics::default()).unwrap();
        assert_eq!(again.open(b"s", &sealed).unwrap(), b"v");
    }
}

//! Password and client-secret hashing, token randomness and constant-time comparison.

use std::cell::RefCell;
use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_blamka::Region;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

mod pool;
pub use pool::{on_hashing_thread, set_hashing_threads};

/// Keycloak's argon2 defaults: argon2id, 7 MiB, 5 iterations, parallelism 1.
fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(7168, 5, 1, None).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string. CPU-heavy: call through `on_hashing_thread`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    phc_with_salt(password, &random_bytes::<16>()?)
}

/// The PHC string the crate's `hash_password_with_salt` gives (tested equal), computed like a
/// verification (blamka, else the crate) in the thread's kept block memory: the crate's own
/// hasher allocates its 7 MiB from the global allocator on every call, which keeps them.
fn phc_with_salt(password: &str, salt: &[u8]) -> anyhow::Result<String> {
    let argon2 = argon2()?;
    let params = argon2.params();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let (alg, version) = (Algorithm::Argon2id, Version::V0x13);
    if hash_with_blamka(alg, version, params, password.as_bytes(), salt, &mut out).is_none() {
        hash_with_crate(&argon2, password.as_bytes(), salt, &mut out)
            .ok_or_else(|| anyhow::anyhow!("argon2: hashing failed"))?;
    }
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!(
        "${}$v={}$m={},t={},p={}${}${}",
        alg.as_str(),
        u32::from(version),
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        b64.encode(salt),
        b64.encode(out)
    ))
}

/// Checks a password against a PHC string with the hash's own parameters (Keycloak realm files
/// carry hashes of any cost); any malformed hash is a mismatch. CPU-heavy: call through
/// `on_hashing_thread`.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_phc(password.as_bytes(), phc).unwrap_or(false)
}

/// What the crate's `PasswordVerifier` checks (the hash's algorithm, version and parameters,
/// no secret), computed by blamka where it applies and by the crate otherwise. `None` when the
/// hash is malformed or outside the crate's bounds.
fn verify_phc(password: &[u8], phc: &str) -> Option<bool> {
    let hash = argon2::PasswordHash::new(phc).ok()?;
    let alg = Algorithm::new(hash.algorithm.as_str()).ok()?;
    let version = hash
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let params = Params::try_from(&hash).ok()?;
    let (salt, expected) = (hash.salt.as_ref()?, hash.hash.as_ref()?);
    let mut out = [0u8; 64];
    let out = out.get_mut(..expected.len())?;
    if hash_with_blamka(alg, version, &params, password, salt.as_ref(), out).is_none() {
        hash_with_crate(
            &Argon2::new(alg, version, params),
            password,
            salt.as_ref(),
            out,
        )?;
    }
    Some(out.ct_eq(expected.as_bytes()).into())
}

/// blamka (AVX2, 1.5–1.7× faster than the crate at Keycloak's parameters) takes argon2 v1.3
/// without key id or associated data: every hash Keycloak or we write. `None` leaves the hash
/// to the crate (other versions, no AVX2), which also rejects what is malformed.
fn hash_with_blamka(
    alg: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Option<()> {
    if version != Version::V0x13 || !params.keyid().is_empty() || salt.len() < argon2::MIN_SALT_LEN
    {
        return None;
    }
    portcullis_blamka::compute(alg, params, password, salt, out)
}

/// Per-thread block memory above this is freed after each hash instead of kept.
const KEEP_BYTES: usize = 64 << 20;

thread_local! {
    /// The crate's block memory (7 MiB at Keycloak's parameters), kept per hashing thread so
    /// a hash neither allocates nor page-faults it in; all zero between hashes; unmapped when
    /// the thread ends (`portcullis_blamka::Region`).
    static MEMORY: RefCell<Region<Block>> = const { RefCell::new(Region::new()) };
}

/// The `argon2` crate (run-time AVX2 dispatch of its scalar code) in this thread's kept
/// memory, zeroed afterwards: it held password-derived state.
fn hash_with_crate(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Option<()> {
    let blocks = argon2.params().block_count();
    MEMORY
        .try_with(|cell| {
            let mut mem = cell.try_borrow_mut().ok()?;
            let memory = mem.get(blocks, Block::new())?;
            let res = argon2.hash_password_into_with_memory(password, salt, out, &mut *memory);
            memory.fill(Block::new());
            // Keeps the zeroing from being optimised away as a dead store.
            std::hint::black_box(&mut *memory);
            if mem.mapped_bytes() > KEEP_BYTES {
                mem.release();
            }
            res.ok()
        })
        .ok()
        .flatten()
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

/// A length for HKDF's output.
struct OutputLen(usize);

impl aws_lc_rs::hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// A 64-byte key for `purpose` in `realm`, derived (HKDF-SHA-256, RFC 5869) from secret key
/// material the store already keeps (`ikm`): every replica derives the same key, nothing new is
/// stored, and one purpose's key tells nothing about another's or about `ikm`.
pub fn derive_key(ikm: &[u8], purpose: &str, realm: &str) -> anyhow::Result<[u8; 64]> {
    use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
    let prk = Salt::new(HKDF_SHA256, &[]).extract(ikm);
    // The purpose ends at a NUL, which neither a purpose nor a realm name contains.
    let info: [&[u8]; 3] = [purpose.as_bytes(), b"\0", realm.as_bytes()];
    let mut out = [0u8; 64];
    prk.expand(&info, OutputLen(out.len()))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| anyhow::anyhow!("key derivation failed"))?;
    Ok(out)
}

/// A random UUID (v4) string, the shape Keycloak uses for ids.
pub fn uuid() -> anyhow::Result<String> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(uuid_string(&b))
}

/// 16 bytes in UUID form (`8-4-4-4-12` lowercase hex), in one allocation: ids are minted on
/// every grant.
pub fn uuid_string(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    s
}

/// Constant-time string equality (lengths may leak, contents do not).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

    #[test]
    fn password_hash_uses_keycloak_parameters_and_verifies() {
        let h = hash_password("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        // The very string the crate's hasher writes for the same salt.
        for (pw, salt) in [("pw", *b"0123456789abcdef"), ("p\u{e4}ss w0rd", [0xff; 16])] {
            let crate_phc = argon2()
                .unwrap()
                .hash_password_with_salt(pw.as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert_eq!(phc_with_salt(pw, &salt).unwrap(), crate_phc);
        }
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
            // blamka takes it wherever it can run, and both paths give the stored hash.
            let (alg, version, params, salt, want) = parts(&h);
            let mut out = vec![0u8; want.len()];
            let fast = hash_with_blamka(alg, version, &params, b"pw", &salt, &mut out);
            assert_eq!(fast.is_some(), portcullis_blamka::available(), "{h}");
            if fast.is_some() {
                assert_eq!(out, want, "{h}");
            }
            let mut out = vec![0u8; want.len()];
            hash_with_crate(&Argon2::new(alg, version, params), b"pw", &salt, &mut out).unwrap();
            assert_eq!(out, want, "{h}");
        }
        // Version 0x10 is left to the crate.
        let params = Params::new(64, 1, 1, None).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x10, params)
            .hash_password_with_salt(b"pw", b"0123456789abcdef")
            .unwrap()
            .to_string();
        let (alg, version, params, salt, want) = parts(&old);
        let mut out = vec![0u8; want.len()];
        assert_eq!(
            hash_with_blamka(alg, version, &params, b"pw", &salt, &mut out),
            None
        );
        assert!(verify_password("pw", &old));
    }

    /// A PHC string's algorithm, version, parameters, salt and hash.
    fn parts(phc: &str) -> (Algorithm, Version, Params, Vec<u8>, Vec<u8>) {
        let hash = argon2::PasswordHash::new(phc).unwrap();
        let alg = Algorithm::new(hash.algorithm.as_str()).unwrap();
        let version = Version::try_from(hash.version.unwrap()).unwrap();
        let params = Params::try_from(&hash).unwrap();
        let salt = hash.salt.unwrap().as_ref().to_vec();
        (
            alg,
            version,
            params,
            salt,
            hash.hash.unwrap().as_bytes().to_vec(),
        )
    }

    #[test]
    fn verify_agrees_with_the_crates_verifier_in_reused_memory() {
        // One thread, so every case reuses (and slices) the memory the previous ones left,
        // including after a case larger than the kept size.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let algs = [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d];
        let sizes = [
            300,
            7168,
            40,
            (KEEP_BYTES / Block::SIZE) as u32 + 8,
            64,
            7168,
        ];
        for (case, m) in sizes.into_iter().chain((0..24).map(|_| 0)).enumerate() {
            let alg = algs[case % 3];
            let version = if case % 5 == 4 {
                Version::V0x10
            } else {
                Version::V0x13
            };
            let p = (rnd() % 4 + 1) as u32;
            let m = if m == 0 {
                8 * p + (rnd() % 300) as u32
            } else {
                m.max(8 * p)
            };
            let t = if m > 8000 { 1 } else { (rnd() % 3 + 1) as u32 };
            let len = [10usize, 16, 32, 33, 64][(rnd() % 5) as usize];
            let mut builder = argon2::ParamsBuilder::new();
            builder.m_cost(m).t_cost(t).p_cost(p).output_len(len);
            if case % 4 == 3 {
                builder.data(argon2::AssociatedData::new(b"ad").unwrap());
            }
            let params = builder.build().unwrap();
            let pwd: String = (0..rnd() % 20)
                .map(|_| char::from(b'a' + (rnd() % 26) as u8))
                .collect();
            let salt: Vec<u8> = (0..8 + rnd() % 20).map(|_| rnd() as u8).collect();
            let crate_argon2 = Argon2::new(alg, version, params);
            let h = crate_argon2
                .hash_password_with_salt(pwd.as_bytes(), &salt)
                .unwrap()
                .to_string();
            let wrong = format!("{pwd}x");
            for (pw, want) in [(pwd.as_str(), true), (wrong.as_str(), false)] {
                let crate_says = argon2::PasswordVerifier::verify_password(
                    &crate_argon2,
                    pw.as_bytes(),
                    h.as_str(),
                )
                .is_ok();
                assert_eq!(crate_says, want, "{h}");
                assert_eq!(verify_password(pw, &h), want, "{h}");
            }
        }
        // The oversized case was not kept.
        assert!(MEMORY.with(|m| m.borrow().mapped_bytes()) <= KEEP_BYTES);
        // The memory holds nothing of the last hash.
        assert!(MEMORY.with(|m| {
            let mut m = m.borrow_mut();
            let n = m.mapped_bytes() / Block::SIZE;
            m.get(n, Block::new())
                .unwrap()
                .iter()
                .all(|b| b.as_ref().iter().all(|w| *w == 0))
        }));
    }

    #[test]
    fn malformed_hashes_are_mismatches() {
        let h = hash_password("pw").unwrap();
        let cut = &h[..h.len() - 4];
        let bad_alg = h.replace("argon2id", "argon2x");
        let bad_version = h.replace("v=19", "v=18");
        let bad_m = h.replace("m=7168", "m=1");
        let no_hash = h.rsplit_once('$').unwrap().0.to_string();
        for bad in [
            "",
            "$argon2id$",
            cut,
            &bad_alg,
            &bad_version,
            &bad_m,
            &no_hash,
        ] {
            assert!(!verify_password("pw", bad), "{bad}");
        }
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
    fn derived_keys_differ_by_material_purpose_and_realm() {
        let k = derive_key(b"material", "refresh", "r").unwrap();
        assert_eq!(
            k,
            derive_key(b"material", "refresh", "r").unwrap(),
            "stable"
        );
        for other in [
            derive_key(b"materiaL", "refresh", "r").unwrap(),
            derive_key(b"material", "kid", "r").unwrap(),
            derive_key(b"material", "refresh", "s").unwrap(),
            derive_key(b"material", "refresh\0r", "").unwrap(),
        ] {
            assert_ne!(k, other);
        }
    }

    #[test]
    fn uuid_shape() {
        let u = uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let b: Vec<u8> = (0u8..16).map(|i| i * 17).collect();
        assert_eq!(
            uuid_string(&b.try_into().unwrap()),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
    }
}

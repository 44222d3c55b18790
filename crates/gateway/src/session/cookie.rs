//! The session's cookies in HTTP: finding one in the request's `Cookie` headers (joined from
//! numbered chunks when it was split), and the `Set-Cookie` values that write or clear it.
//! Every cookie is `Secure; HttpOnly; SameSite=Lax; Path=/` (what `__Host-` asks for).

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, header};

/// Largest value in one cookie: browsers keep 4096 bytes of name, value and attributes.
pub const CHUNK: usize = 3800;
/// A session never needs more chunks than this; more in a request are ignored.
pub const MAX_CHUNKS: usize = 8;

/// Every `name=value` pair of the request's `Cookie` headers (HTTP/2 may send several).
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            Some((k.trim(), v.trim()))
        })
}

/// The value of cookie `name`: the cookie itself, else its chunks `name.0`, `name.1`, … joined
/// (all of them, from 0 without a gap, or none).
pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    let mut chunks: [Option<&str>; MAX_CHUNKS] = [None; MAX_CHUNKS];
    let mut any_chunk = false;
    for (k, v) in pairs(headers) {
        if k == name {
            if !v.is_empty() {
                return Some(Cow::Borrowed(v));
            }
            continue;
        }
        if let Some(i) = chunk_index(k, name) {
            chunks[i] = Some(v);
            any_chunk = true;
        }
    }
    if !any_chunk {
        return None;
    }
    let n = chunks.iter().take_while(|c| c.is_some()).count();
    if n == 0 || chunks[n..].iter().any(Option::is_some) {
        return None;
    }
    Some(Cow::Owned(chunks[..n].iter().flatten().copied().collect()))
}

/// `i` when `k` is `name.i`.
fn chunk_index(k: &str, name: &str) -> Option<usize> {
    let i: usize = k.strip_prefix(name)?.strip_prefix('.')?.parse().ok()?;
    (i < MAX_CHUNKS).then_some(i)
}

/// Whether cookie `k` is one of the gateway's own for session cookie `name`: the session
/// cookie, one of its chunks, or a pre-auth cookie.
pub fn is_own(k: &str, name: &str) -> bool {
    k.strip_prefix(name).is_some_and(|rest| {
        rest.is_empty() || rest.starts_with(".a.") || chunk_index(k, name).is_some()
    })
}

/// The names of cookies the request has that start with `prefix` (for clearing pre-auth
/// cookies of abandoned sign-ins).
pub fn names_with_prefix<'h>(headers: &'h HeaderMap, prefix: &str) -> Vec<&'h str> {
    pairs(headers)
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(prefix))
        .collect()
}

/// `Set-Cookie` for `name=value`, for `max_age` seconds (`None`: until the browser closes).
pub fn set(name: &str, value: &str, max_age: Option<u64>) -> Option<HeaderValue> {
    let mut s = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).ok()
}

/// `Set-Cookie` that removes `name`.
pub fn clear(name: &str) -> Option<HeaderValue> {
    set(name, "", Some(0))
}

/// The `Set-Cookie`s that store `value` as cookie `name`: whole when it fits, else in chunks
/// `name.0 … name.N`; whatever form the request had and the new value doesn't use is cleared.
pub fn write_session(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: u64,
) -> Vec<HeaderValue> {
    let mut out = Vec::new();
    let had: Vec<&str> = pairs(headers).map(|(k, _)| k).collect();
    if value.len() <= CHUNK {
        out.extend(set(name, value, Some(max_age)));
        for k in had.iter().filter(|k| chunk_index(k, name).is_some()) {
            out.extend(clear(k));
        }
        return out;
    }
    let parts: Vec<&str> = split(value);
    for (i, part) in parts.iter().enumerate() {
        out.extend(set(&format!("{name}.{i}"), part, Some(max_age)));
    }
    for k in &had {
        if *k == name || chunk_index(k, name).is_some_and(|i| i >= parts.len()) {
            out.extend(clear(k));
        }
    }
    out
}

/// The `Set-Cookie`s that remove cookie `name` in every form the request has it.
pub fn clear_session(headers: &HeaderMap, name: &str) -> Vec<HeaderValue> {
    let mut out: Vec<HeaderValue> = pairs(headers)
        .filter(|(k, _)| *k == name || chunk_index(k, name).is_some())
        .filter_map(|(k, _)| clear(k))
        .collect();
    if out.is_empty() {
        out.extend(clear(name));
    }
    out
}

/// `value` in pieces of at most `CHUNK` bytes (sealed values are ASCII).
fn split(value: &str) -> Vec<&str> {
    value
        .as_bytes()
        .chunks(CHUNK)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn whole_and_chunked_values_are_read() {
        let h = headers("a=1; __Host-p=abc; b=2");
        assert_eq!(read(&h, "__Host-p").as_deref(), Some("abc"));
        let h = headers("__Host-p.1=def; x=y; __Host-p.0=abc");
        assert_eq!(read(&h, "__Host-p").as_deref(), Some("abcdef"));
        // A gap, or nothing at 0: no value.
        assert_eq!(
            read(&headers("__Host-p.0=a; __Host-p.2=c"), "__Host-p"),
            None
        );
        assert_eq!(read(&headers("__Host-p.1=b"), "__Host-p"), None);
        assert_eq!(
            read(&headers("__Host-px=b; __Host-p.x=1"), "__Host-p"),
            None
        );
        assert_eq!(read(&HeaderMap::new(), "__Host-p"), None);
        // Several Cookie headers (HTTP/2).
        let mut h = headers("__Host-p.0=ab");
        h.append(header::COOKIE, HeaderValue::from_static("__Host-p.1=cd"));
        assert_eq!(read(&h, "__Host-p").as_deref(), Some("abcd"));
    }

    #[test]
    fn long_values_are_split_and_stale_forms_cleared() {
        let long = "x".repeat(CHUNK * 2 + 10);
        let h = headers("__Host-p=old; __Host-p.5=old");
        let out: Vec<String> = write_session(&h, "__Host-p", &long, 60)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(out.len(), 5, "{out:?}");
        assert!(out[0].starts_with("__Host-p.0=xxx"));
        assert!(out[2].starts_with(&format!("__Host-p.2={}", "x".repeat(10))));
        assert!(out[2].ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=60"));
        assert!(
            out[3..]
                .iter()
                .all(|c| c.contains("=; ") && c.ends_with("Max-Age=0"))
        );
        // Reading the written chunks gives the value back.
        let jar: Vec<String> = out[..3]
            .iter()
            .map(|c| c.split(';').next().unwrap().to_string())
            .collect();
        assert_eq!(read(&headers(&jar.join("; ")), "__Host-p").unwrap(), long);

        let short = write_session(&headers("__Host-p.0=a; __Host-p.1=b"), "__Host-p", "v", 60);
        assert_eq!(short.len(), 3);
        assert_eq!(
            clear_session(&headers("__Host-p.0=a; __Host-p.1=b"), "__Host-p").len(),
            2
        );
    }
}

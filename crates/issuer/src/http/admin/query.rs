//! What admin requests carry besides the path: the query string (Keycloak's `first`, `max`,
//! `briefRepresentation`, filters; a parameter may repeat) and JSON bodies. Both answer bad
//! input with the admin API's JSON error, never axum's plain-text rejection.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AdminError;
use crate::domain::admin::Page;

/// Largest admin request body (a realm's worth of representations is far less).
const MAX_BODY: usize = 1024 * 1024;

fn bad(m: String) -> AdminError {
    AdminError(StatusCode::BAD_REQUEST, m)
}

/// The query string's name-value pairs, in order.
#[derive(Debug, Clone, Default)]
pub struct AdminQuery(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for AdminQuery {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AdminError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map(AdminQuery)
            .map_err(|e| bad(format!("invalid query string: {e}")))
    }
}

impl AdminQuery {
    /// The first value of `k`.
    pub fn str(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    /// Every value of `k` (`type=LOGIN&type=LOGOUT`).
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn bool(&self, k: &str) -> Result<Option<bool>, AdminError> {
        match self.str(k).as_deref() {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(bad(format!("{k}: expected true or false"))),
        }
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>, AdminError> {
        match self.str(k).as_deref() {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| bad(format!("{k}: expected an integer"))),
        }
    }

    /// `first` and `max`.
    pub fn page(&self) -> Result<Page, AdminError> {
        Ok(Page {
            first: self.int("first")?,
            max: self.int("max")?,
        })
    }

    /// `briefRepresentation`, `default` when absent.
    pub fn brief(&self, default: bool) -> Result<bool, AdminError> {
        Ok(self.bool("briefRepresentation")?.unwrap_or(default))
    }

    /// `dateFrom` / `dateTo` as Unix seconds: `yyyy-MM-dd` (that day's start, or with `end`
    /// its last second) or milliseconds since the epoch.
    pub fn date(&self, k: &str, end: bool) -> Result<Option<i64>, AdminError> {
        let Some(v) = self.str(k).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if v.bytes().all(|b| b.is_ascii_digit()) {
            return v
                .parse::<i64>()
                .map(|ms| Some(ms / 1000))
                .map_err(|_| bad(format!("{k}: invalid date")));
        }
        let parts: Vec<&str> = v.split('-').collect();
        let num = |s: &str| s.parse::<i64>().ok();
        match parts.as_slice() {
            [y, m, d] if y.len() == 4 => match (num(y), num(m), num(d)) {
                (Some(y), Some(m @ 1..=12), Some(d @ 1..=31)) => {
                    let start = days_from_civil(y, m, d) * 86_400;
                    Ok(Some(if end { start + 86_399 } else { start }))
                }
                _ => Err(bad(format!("{k}: invalid date"))),
            },
            _ => Err(bad(format!("{k}: expected yyyy-MM-dd"))),
        }
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A JSON body of `T` (unknown fields ignored, as Keycloak's representations carry many).
pub struct AdminJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, _: &S) -> Result<Self, AdminError> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| bad("request body too large or unreadable".into()))?;
        serde_json::from_slice(&bytes)
            .map(AdminJson)
            .map_err(|e| bad(format!("invalid JSON body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2023, 11, 14), 19_675);
        let q = AdminQuery(vec![
            ("dateFrom".into(), "2023-11-14".into()),
            ("dateTo".into(), "1700000000000".into()),
            ("max".into(), "x".into()),
            ("exact".into(), "TRUE".into()),
        ]);
        assert_eq!(q.date("dateFrom", false).unwrap(), Some(19_675 * 86_400));
        assert_eq!(
            q.date("dateFrom", true).unwrap(),
            Some(19_675 * 86_400 + 86_399)
        );
        assert_eq!(q.date("dateTo", false).unwrap(), Some(1_700_000_000));
        assert!(q.page().is_err());
        assert_eq!(q.bool("exact").unwrap(), Some(true));
        assert_eq!(q.bool("missing").unwrap(), None);
    }
}

//! The realm's mail settings between its file and its stored settings:
//! `registrationAllowed`, `resetPasswordAllowed`, `verifyEmail`, the action-token lifespans and
//! `smtpServer`. Export shows the SMTP password as Keycloak does, `**********`, and importing
//! that mask keeps the password already stored.

use std::collections::BTreeMap;

use serde_json::Value;

use super::realm_file::{RealmFile, SmtpServerRep};
use portcullis_store::{RealmSettings, SmtpServer};

/// Keycloak's stand-in for a secret it will not show.
pub const MASK: &str = "**********";

/// Sets `s`'s account settings from `f` (defaults for what it leaves out); `stored` is the
/// realm's settings before, whose SMTP password a masked one keeps.
pub fn apply(f: &RealmFile, s: &mut RealmSettings, stored: Option<&RealmSettings>) {
    let d = RealmSettings::default();
    s.registration_allowed = f.registration_allowed.unwrap_or(d.registration_allowed);
    s.reset_password_allowed = f.reset_password_allowed.unwrap_or(d.reset_password_allowed);
    s.verify_email = f.verify_email.unwrap_or(d.verify_email);
    s.action_token_generated_by_user_lifespan = f
        .action_token_generated_by_user_lifespan
        .filter(|l| *l > 0)
        .unwrap_or(d.action_token_generated_by_user_lifespan);
    s.action_token_generated_by_admin_lifespan = f
        .action_token_generated_by_admin_lifespan
        .filter(|l| *l > 0)
        .unwrap_or(d.action_token_generated_by_admin_lifespan);
    let mut smtp: BTreeMap<String, String> = f
        .smtp_server
        .iter()
        .flat_map(|r| r.0.iter())
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect();
    if smtp.get("password").map(String::as_str) == Some(MASK) {
        match stored.and_then(|s| s.smtp_server.0.get("password")) {
            Some(pw) => smtp.insert("password".into(), pw.clone()),
            None => smtp.remove("password"),
        };
    }
    s.smtp_server = SmtpServer(smtp);
}

/// Writes `s`'s account settings into the export `f`, the SMTP password masked.
pub fn export(s: &RealmSettings, f: &mut RealmFile) {
    f.registration_allowed = Some(s.registration_allowed);
    f.reset_password_allowed = Some(s.reset_password_allowed);
    f.verify_email = Some(s.verify_email);
    f.action_token_generated_by_user_lifespan = Some(s.action_token_generated_by_user_lifespan);
    f.action_token_generated_by_admin_lifespan = Some(s.action_token_generated_by_admin_lifespan);
    f.smtp_server = (!s.smtp_server.0.is_empty()).then(|| {
        SmtpServerRep(
            s.smtp_server
                .0
                .iter()
                .map(|(k, v)| {
                    let shown = if k == "password" { MASK } else { v.as_str() };
                    (k.clone(), Value::String(shown.to_string()))
                })
                .collect(),
        )
    });
}

/// The realm's `smtpServer` for the admin API's realm representation (password masked).
pub fn smtp_rep(s: &RealmSettings) -> Value {
    let mut f = RealmFile::default();
    export(s, &mut f);
    serde_json::to_value(f.smtp_server.unwrap_or_default()).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::domain::realm_file;

    #[test]
    fn settings_round_trip_with_the_password_masked_and_kept() {
        let env = |n: &str| (n == "PW").then(|| "from-env".to_string());
        let text = r#"{"realm": "r", "displayName": "My Realm", "resetPasswordAllowed": true,
            "verifyEmail": true, "actionTokenGeneratedByUserLifespan": 60,
            "smtpServer": {"host": "${HOST:mail}", "port": 1025, "auth": true, "from": "a@b.c",
                           "user": "u", "password": "${PW}"}}"#;
        let f = realm_file::parse(Path::new("r.json"), text, &env).unwrap();
        assert!(!format!("{f:?}").contains("PW"));
        let mut s = RealmSettings::default();
        apply(&f, &mut s, None);
        assert!(s.reset_password_allowed && s.verify_email && !s.registration_allowed);
        assert_eq!(s.action_token_generated_by_user_lifespan, 60);
        assert_eq!(s.action_token_generated_by_admin_lifespan, 43200);
        let smtp = &s.smtp_server;
        assert_eq!(smtp.get("host"), Some("mail"));
        assert_eq!(smtp.get("port"), Some("1025"));
        assert_eq!(smtp.get("auth"), Some("true"));
        // Stored as written: the variable is read at send time.
        assert_eq!(smtp.get("password"), Some("${PW}"));
        assert!(!format!("{s:?}").contains("${PW}"));

        let mut out = RealmFile::default();
        export(&s, &mut out);
        let text = serde_json::to_string(&out).unwrap();
        assert!(text.contains(MASK) && !text.contains("${PW}"), "{text}");
        assert_eq!(smtp_rep(&s)["password"], MASK);
        // Importing the export keeps the stored password.
        let mut again = RealmSettings::default();
        apply(&out, &mut again, Some(&s));
        assert_eq!(again.smtp_server.get("password"), Some("${PW}"));
        let mut fresh = RealmSettings::default();
        apply(&out, &mut fresh, None);
        assert_eq!(fresh.smtp_server.get("password"), None);
    }
}

//! The realm's `passwordPolicy`, Keycloak's syntax (`length(12) and digits(1) and
//! notUsername(undefined) and passwordHistory(3)`) and messages. Policies portcullis does not
//! enforce (`hashIterations`, `hashAlgorithm`, `forceExpiredPasswordChange`, …) are ignored:
//! the hash is always argon2id with Keycloak's parameters.

use portcullis_store::UserRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Length(usize),
    MaxLength(usize),
    Digits(usize),
    LowerCase(usize),
    UpperCase(usize),
    SpecialChars(usize),
    NotUsername,
    NotEmail,
    History(usize),
}

/// A parsed policy; the empty policy accepts everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// Keycloak's policy string; an absent or malformed number takes Keycloak's default for that
/// policy, an unknown name is skipped.
pub fn parse(s: &str) -> Policy {
    let mut rules = Vec::new();
    for part in s.split(" and ").map(str::trim).filter(|p| !p.is_empty()) {
        let (name, arg) = match part.split_once('(') {
            Some((n, rest)) => (n.trim(), rest.trim_end_matches(')').trim()),
            None => (part, ""),
        };
        let n = |default: usize| arg.parse::<usize>().unwrap_or(default);
        rules.push(match name {
            "length" => Rule::Length(n(8)),
            "maxLength" => Rule::MaxLength(n(64)),
            "digits" => Rule::Digits(n(1)),
            "lowerCase" => Rule::LowerCase(n(1)),
            "upperCase" => Rule::UpperCase(n(1)),
            "specialChars" => Rule::SpecialChars(n(1)),
            "notUsername" => Rule::NotUsername,
            "notEmail" => Rule::NotEmail,
            "passwordHistory" => Rule::History(n(3)),
            _ => continue,
        });
    }
    Policy { rules }
}

impl Policy {
    /// How many passwords, the current one included, a new one must differ from (0: none).
    pub fn history(&self) -> usize {
        self.rules
            .iter()
            .find_map(|r| match r {
                Rule::History(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Every rule but the history (which needs the stored hashes): the first broken one's
    /// message, in Keycloak's words.
    pub fn check(&self, password: &str, user: &UserRow) -> Result<(), String> {
        let count = |f: fn(char) -> bool| password.chars().filter(|c| f(*c)).count();
        for r in &self.rules {
            let broken = match *r {
                Rule::Length(n) if password.chars().count() < n => {
                    Some(format!("Invalid password: minimum length {n}."))
                }
                Rule::MaxLength(n) if password.chars().count() > n => {
                    Some(format!("Invalid password: maximum length {n}."))
                }
                Rule::Digits(n) if count(|c| c.is_ascii_digit()) < n => Some(format!(
                    "Invalid password: must contain at least {n} numerical digits."
                )),
                Rule::LowerCase(n) if count(char::is_lowercase) < n => Some(format!(
                    "Invalid password: must contain at least {n} lower case characters."
                )),
                Rule::UpperCase(n) if count(char::is_uppercase) < n => Some(format!(
                    "Invalid password: must contain at least {n} upper case characters."
                )),
                Rule::SpecialChars(n) if count(|c| !c.is_alphanumeric()) < n => Some(format!(
                    "Invalid password: must contain at least {n} special characters."
                )),
                Rule::NotUsername if password.eq_ignore_ascii_case(&user.username) => {
                    Some("Invalid password: must not be equal to the username.".into())
                }
                Rule::NotEmail
                    if user
                        .email
                        .as_deref()
                        .is_some_and(|e| password.eq_ignore_ascii_case(e)) =>
                {
                    Some("Invalid password: must not be equal to the email.".into())
                }
                _ => None,
            };
            if let Some(m) = broken {
                return Err(m);
            }
        }
        Ok(())
    }
}

/// The message for a password found among the last `n`.
pub fn history_message(n: usize) -> String {
    format!("Invalid password: must not be equal to any of last {n} passwords.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserRow {
        UserRow {
            id: "u".into(),
            realm: "r".into(),
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            first_name: None,
            last_name: None,
            email_verified: false,
            enabled: true,
            created_at: 0,
            password_hash: None,
            service_account_client: None,
        }
    }

    #[test]
    fn keycloak_policy_strings_are_enforced_in_words() {
        let p = parse(
            "length(12) and digits(2) and upperCase(1) and lowerCase(1) and specialChars(1) \
             and notUsername(undefined) and notEmail(undefined) and passwordHistory(3) \
             and hashIterations(27500) and maxLength(20)",
        );
        assert_eq!(p.history(), 3);
        let u = user();
        for (pw, want) in [
            ("Short1!", "minimum length 12"),
            ("Aaaaaaaaaaaa1!", "at least 2 numerical digits"),
            ("aaaaaaaaaa12!", "at least 1 upper case"),
            ("AAAAAAAAAA12!", "at least 1 lower case"),
            ("Aaaaaaaaaa12", "at least 1 special"),
            ("Aaaaaaaaaaaaaaaaaa12!", "maximum length 20"),
        ] {
            let e = p.check(pw, &u).unwrap_err();
            assert!(e.contains(want), "{pw}: {e}");
        }
        assert!(p.check("Aaaaaaaaa12!", &u).is_ok());
        let q = parse("notUsername and notEmail");
        assert!(q.check("ALICE", &u).unwrap_err().contains("username"));
        assert!(
            q.check("alice@example.com", &u)
                .unwrap_err()
                .contains("email")
        );
        assert_eq!(parse("length").rules, vec![Rule::Length(8)]);
        assert_eq!(parse(""), Policy::default());
        assert!(parse("").check("", &u).is_ok());
    }
}

//! The issuer's account mails (Keycloak's email features): the realm's `smtpServer` as typed
//! settings (`config`), the plain-text and HTML bodies (`templates`), and the queue that sends
//! them off the request path with retries (`queue`). Addresses are parsed with lettre's types
//! before they reach a header, so no input can add a header or a recipient.

pub mod config;
pub mod queue;
pub mod templates;

use lettre::Address;

/// A user's address as given in a form or the admin API, if it is one plain address: no
/// display name, list, comment, control or whitespace character (lettre's `Address`, which
/// refuses `a@b, c@d` and `"a@b\r\nBcc: x"`).
pub fn address(s: &str) -> Option<Address> {
    if s.len() > 254 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    s.parse::<Address>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_plain_address_is_an_address() {
        assert_eq!(
            address("ann@example.com").map(|a| a.to_string()),
            Some("ann@example.com".into())
        );
        for bad in [
            "a@b\r\nBcc: x@evil.test",
            "a@b\nBcc: x",
            "a@b\0",
            "a@b, c@d",
            "a@b,c@d",
            "Ann <a@b.c>",
            "a@b.c (comment)",
            "no-at-sign",
            "@b.c",
            "a@",
            "",
            " a@b.c",
        ] {
            assert!(address(bad).is_none(), "{bad:?}");
        }
    }
}

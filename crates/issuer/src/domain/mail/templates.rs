//! The account mails' subjects and bodies, plain text and HTML (every value escaped there),
//! naming the realm by its display name, as Keycloak's default email theme words them.

/// What a mail is for: its `kind` label on the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    VerifyEmail,
    ResetPassword,
    ExecuteActions,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::VerifyEmail => "verify_email",
            Kind::ResetPassword => "reset_password",
            Kind::ExecuteActions => "execute_actions",
        }
    }
}

/// A rendered mail.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub kind: Kind,
    pub subject: String,
    pub text: String,
    pub html: String,
}

// The bodies carry a live link: never in a log.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// `s` safe in HTML text and in quoted attribute values (`& < > " '`). The login and console
/// pages escape with it too (`http::login::escape`), so mails and pages escape alike.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// "5 minutes", "12 hours", "1 day": how long a link lives, in words.
pub fn lifespan(seconds: i64) -> String {
    let (n, unit) = match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        s => (s.max(0), "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The shared shape: a greeting paragraph, the link, the lifespan, and what to do otherwise.
fn render(kind: Kind, subject: String, lead: &str, link: &str, expires: &str, other: &str) -> Mail {
    // A realm's display name is the admin's text: no control character reaches the header.
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = format!("{lead}\n\n{link}\n\nThis link will expire within {expires}.\n\n{other}\n");
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
         <body><p>{lead}</p>\n<p><a href=\"{link}\">{link}</a></p>\n\
         <p>This link will expire within {expires}.</p>\n<p>{other}</p></body></html>\n",
        subject = escape(&subject),
        lead = escape(lead),
        link = escape(link),
        expires = escape(expires),
        other = escape(other),
    );
    Mail {
        kind,
        subject,
        text,
        html,
    }
}

/// "Verify email": the link that confirms the address belongs to the account.
pub fn verify_email(realm: &str, link: &str, seconds: i64) -> Mail {
    render(
        Kind::VerifyEmail,
        format!("Verify email for {realm}"),
        &format!(
            "Someone has created a {realm} account with this email address. If this was you, \
             click the link below to verify your email address."
        ),
        link,
        &lifespan(seconds),
        "If you didn't create this account, just ignore this message.",
    )
}

/// "Reset password": the link that lets the user choose a new password.
pub fn reset_password(realm: &str, link: &str, seconds: i64) -> Mail {
    render(
        Kind::ResetPassword,
        format!("Reset password for {realm}"),
        &format!(
            "Someone just requested to change your {realm} account's credentials. If this was \
             you, click on the link below to reset them."
        ),
        link,
        &lifespan(seconds),
        "If you don't want to reset your credentials, just ignore this message and nothing \
         will be changed.",
    )
}

/// "Update your account": an administrator asks the user to perform `actions` (words).
pub fn execute_actions(realm: &str, link: &str, seconds: i64, actions: &[&str]) -> Mail {
    render(
        Kind::ExecuteActions,
        format!("Update your {realm} account"),
        &format!(
            "Your administrator has just requested that you update your {realm} account by \
             performing the following action(s): {}. Click on the link below to start this \
             process.",
            actions.join(", ")
        ),
        link,
        &lifespan(seconds),
        "If you are unaware that your administrator has requested this, just ignore this \
         message and nothing will be changed.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_the_realm_carry_the_link_and_escape_html() {
        let m = verify_email("<My & Realm>", "https://id/x?key=a&b=c", 300);
        assert_eq!(m.subject, "Verify email for <My & Realm>");
        assert!(m.text.contains("https://id/x?key=a&b=c"));
        assert!(m.text.contains("within 5 minutes"));
        assert!(m.html.contains("&lt;My &amp; Realm&gt;"));
        assert!(m.html.contains("href=\"https://id/x?key=a&amp;b=c\""));
        assert!(!m.html.contains("<My"));
        assert!(!format!("{m:?}").contains("key="));
        let r = reset_password("R", "L", 43200);
        assert!(r.text.contains("within 12 hours") && r.subject.contains('R'));
        let e = execute_actions("R", "L", 86400, &["Verify Email", "Update Password"]);
        assert!(e.text.contains("Verify Email, Update Password") && e.text.contains("1 day"));
        assert_eq!(lifespan(90), "1 minute");
        let odd = reset_password("R\r\nBcc: x@evil.test", "L", 60);
        assert_eq!(odd.subject, "Reset password for R  Bcc: x@evil.test");
        assert_eq!(lifespan(1), "1 second");
    }
}

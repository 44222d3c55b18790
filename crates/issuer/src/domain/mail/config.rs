//! A realm's `smtpServer` (Keycloak's string map) as typed settings: the server, how it is
//! secured, the sender and the credentials. The password may be `${VAR}` (or
//! `${VAR:default}`), read from the environment when a mail is sent, so the secret need not
//! be stored; Keycloak's flags are the strings `"true"`/`"false"`. TLS trusts the system's
//! roots and, with `portcullisCaFile` (a portcullis key: Keycloak takes these from its
//! truststore), the PEM certificates of that file too.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::address;
use crate::domain::realm_file::substitute;
use portcullis_store::{Secret, SmtpServer};

/// How long one SMTP command may take before the attempt fails (and is retried).
const TIMEOUT: Duration = Duration::from_secs(15);

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP (a local relay, MailDev).
    None,
    /// `starttls: "true"`: STARTTLS, required (a server that does not offer it is an error,
    /// so no one on the path can strip it).
    StartTls,
    /// `ssl: "true"`: TLS from the first byte (SMTPS, port 465).
    Tls,
}

/// A realm's SMTP settings, checked.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// User and password when `auth` is `"true"`.
    pub auth: Option<(String, Secret<String>)>,
    /// Extra trusted roots (`portcullisCaFile`), one PEM block each.
    pub roots: Vec<Vec<u8>>,
}

/// The PEM certificate blocks of `file`, or why there are none.
fn read_roots(file: &str) -> Result<Vec<Vec<u8>>, String> {
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("smtpServer.portcullisCaFile {file}: {e}"))?;
    let blocks: Vec<Vec<u8>> = text
        .split_inclusive(END)
        .filter(|b| b.contains(END))
        .map(|b| b.trim().as_bytes().to_vec())
        .collect();
    if blocks.is_empty() {
        return Err(format!(
            "smtpServer.portcullisCaFile {file}: no PEM certificate"
        ));
    }
    Ok(blocks)
}

fn flag(s: &SmtpServer, key: &str) -> bool {
    s.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A mailbox from an address and an optional display name. lettre encodes the name, but
/// panics on a control character in it, so those are refused here.
fn mailbox(addr: &str, name: Option<&str>, what: &str) -> Result<Mailbox, String> {
    let a = address(addr).ok_or_else(|| format!("smtpServer.{what} is not one address"))?;
    if name.is_some_and(|n| n.chars().any(char::is_control)) {
        return Err(format!(
            "smtpServer.{what}DisplayName has a control character"
        ));
    }
    Ok(Mailbox::new(name.map(str::to_string), a))
}

impl SmtpConfig {
    /// The settings of `s`, `None` when the realm has no SMTP server (no `host`), or why they
    /// do not work. `env` resolves `${VAR}` in the password.
    pub fn from_settings(
        s: &SmtpServer,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<SmtpConfig>, String> {
        let Some(host) = s.get("host") else {
            return Ok(None);
        };
        let security = if flag(s, "ssl") {
            Security::Tls
        } else if flag(s, "starttls") {
            Security::StartTls
        } else {
            Security::None
        };
        let port = match s.get("port") {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("smtpServer.port is not a port")?,
            None if security == Security::Tls => 465,
            None => 25,
        };
        let from = mailbox(
            s.get("from").ok_or("smtpServer.from is missing")?,
            s.get("fromDisplayName"),
            "from",
        )?;
        let reply_to = s
            .get("replyTo")
            .map(|r| mailbox(r, s.get("replyToDisplayName"), "replyTo"))
            .transpose()?;
        let auth = if flag(s, "auth") {
            let user = s.get("user").ok_or("smtpServer.user is missing")?;
            let password = substitute(s.get("password").unwrap_or_default(), env);
            if password.contains("${") {
                return Err("smtpServer.password names an unset variable".into());
            }
            Some((user.to_string(), Secret(password)))
        } else {
            None
        };
        let roots = match s.get("portcullisCaFile") {
            Some(f) if security != Security::None => read_roots(f)?,
            _ => Vec::new(),
        };
        Ok(Some(SmtpConfig {
            host: host.to_string(),
            port,
            security,
            from,
            reply_to,
            auth,
            roots,
        }))
    }

    /// A transport for one delivery (a mail is rare: no pool is kept).
    pub fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = || {
            let mut b = TlsParameters::builder(self.host.clone());
            for pem in &self.roots {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| format!("smtpServer.portcullisCaFile: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build().map_err(|e| format!("smtp tls: {e}"))
        };
        let tls = match self.security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(tls()?),
            Security::Tls => Tls::Wrapper(tls()?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .tls(tls)
            .timeout(Some(TIMEOUT));
        if let Some((user, pw)) = &self.auth {
            b = b.credentials(Credentials::new(user.clone(), pw.expose().clone()));
        }
        Ok(b.build())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn server(pairs: &[(&str, &str)]) -> SmtpServer {
        SmtpServer(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn env(name: &str) -> Option<String> {
        (name == "SMTP_PW").then(|| "s3cret".to_string())
    }

    #[test]
    fn keycloak_keys_are_read() {
        assert!(
            SmtpConfig::from_settings(&server(&[]), &env)
                .unwrap()
                .is_none()
        );
        let c = SmtpConfig::from_settings(
            &server(&[
                ("host", "mail.example"),
                ("from", "idp@example.com"),
                ("fromDisplayName", "Example \"IdP\", Bcc: x@evil"),
                ("replyTo", "help@example.com"),
                ("starttls", "true"),
                ("auth", "true"),
                ("user", "idp"),
                ("password", "${SMTP_PW}"),
            ]),
            &env,
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("mail.example", 25));
        assert_eq!(c.security, Security::StartTls);
        assert_eq!(c.auth.as_ref().unwrap().1.expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.reply_to.unwrap().email.to_string(), "help@example.com");
        // The display name is encoded, never a raw header line.
        let m = lettre::Message::builder()
            .from(c.from)
            .to("a@b.test".parse().unwrap())
            .subject("s")
            .body(String::from("b"))
            .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(!text.to_ascii_lowercase().contains("\r\nbcc:"), "{text}");
        let from = text.lines().find(|l| l.starts_with("From: ")).unwrap();
        assert!(from.ends_with(" <idp@example.com>"), "{text}");
        assert!(
            !text
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc"))
        );

        let ssl = server(&[("host", "h"), ("from", "a@b.c"), ("ssl", "true")]);
        let c = SmtpConfig::from_settings(&ssl, &env).unwrap().unwrap();
        assert_eq!((c.security, c.port), (Security::Tls, 465));
    }

    #[test]
    fn broken_settings_say_why() {
        for (pairs, why) in [
            (vec![("host", "h")], "from is missing"),
            (vec![("host", "h"), ("from", "a@b, c@d")], "from is not"),
            (
                vec![("host", "h"), ("from", "a@b.c"), ("port", "x")],
                "port",
            ),
            (
                vec![
                    ("host", "h"),
                    ("from", "a@b.c"),
                    ("fromDisplayName", "IdP\r\nBcc: x@evil.test"),
                ],
                "control character",
            ),
            (
                vec![("host", "h"), ("from", "a@b.c"), ("auth", "true")],
                "user is missing",
            ),
            (
                vec![
                    ("host", "h"),
                    ("from", "a@b.c"),
                    ("auth", "true"),
                    ("user", "u"),
                    ("password", "${UNSET_PW}"),
                ],
                "unset variable",
            ),
        ] {
            let err = SmtpConfig::from_settings(&server(&pairs), &env).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}

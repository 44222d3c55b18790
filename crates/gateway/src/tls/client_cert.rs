//! A verified client certificate as the request path sees it (DESIGN §11): its identity (the
//! URI SAN, e.g. a SPIFFE ID, else the first DNS SAN, else the subject CN), the principal that
//! identity stands for, and the `X-Forwarded-Client-Cert` value sent upstream in Envoy's
//! format. Derived once per connection, right after the handshake, from the leaf certificate
//! rustls has verified; every request on the connection shares it.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::proxy::identity::Standing;
use portcullis_authz::PolicySet;
use portcullis_core::identity::Principal;

/// Where a certificate's identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    UriSan,
    DnsSan,
    SubjectCn,
}

/// What the gateway knows about a connection's verified client certificate.
#[derive(Debug)]
pub struct ClientCert {
    pub principal: Arc<Principal>,
    pub source: IdentitySource,
    /// The subject, RFC 4514 style (`CN=orders,O=shop`).
    pub subject: String,
    /// SHA-256 of the certificate's DER, lower-case hex.
    pub sha256: String,
    pub not_after: i64,
    /// `X-Forwarded-Client-Cert` for upstreams; `None` when the certificate's names hold bytes
    /// no header may carry.
    pub xfcc: Option<HeaderValue>,
    /// The standing under the policy set that asked last: a connection outlives reloads, and a
    /// principal's memo keeps only the first set's (see [`Standing::of`]).
    standing: ArcSwapOption<Standing>,
}

impl ClientCert {
    /// Reads the leaf certificate `der`. Refused when it does not parse or names no identity.
    pub fn from_der(der: &[u8]) -> Result<ClientCert, String> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let (mut uris, mut dns) = (Vec::new(), Vec::new());
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(u) => uris.push(*u),
                    GeneralName::DNSName(d) => dns.push(*d),
                    _ => {}
                }
            }
        }
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok());
        let (identity, source) = match (uris.first(), dns.first(), cn) {
            (Some(u), _, _) => (*u, IdentitySource::UriSan),
            (None, Some(d), _) => (*d, IdentitySource::DnsSan),
            (None, None, Some(cn)) => (cn, IdentitySource::SubjectCn),
            (None, None, None) => {
                return Err("the certificate names no URI or DNS SAN and no subject CN".into());
            }
        };
        if identity.is_empty() || identity.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("the certificate's identity is empty or has control characters".into());
        }
        let subject = rfc4514(cert.subject());
        let sha256 = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref());
        let xfcc = HeaderValue::from_bytes(xfcc(&sha256, &uris, &dns, &subject).as_bytes()).ok();
        Ok(ClientCert {
            principal: Arc::new(Principal::from_certificate(identity.to_string())),
            source,
            subject,
            sha256,
            not_after: cert.validity().not_after.timestamp(),
            xfcc,
            standing: ArcSwapOption::empty(),
        })
    }

    /// The certificate's identity (the principal's `sub`).
    pub fn identity(&self) -> &str {
        &self.principal.sub
    }

    /// The principal's standing under `policies`, derived once per policy set.
    pub fn standing(&self, policies: &PolicySet) -> Arc<Standing> {
        if let Some(s) = self.standing.load_full()
            && s.held.derived_by(policies)
        {
            return s;
        }
        let s = Standing::of(policies, &self.principal);
        self.standing.store(Some(Arc::clone(&s)));
        s
    }
}

/// `Hash=…;URI=…;DNS=…;Subject="…"`: Envoy's `X-Forwarded-Client-Cert` element for one
/// certificate (each URI and DNS SAN a pair of its own; values quoted where they hold `,;="`).
fn xfcc(sha256: &str, uris: &[&str], dns: &[&str], subject: &str) -> String {
    let mut out = format!("Hash={sha256}");
    for (key, values) in [("URI", uris), ("DNS", dns)] {
        for v in values {
            out.push(';');
            out.push_str(key);
            out.push('=');
            push_value(&mut out, v, false);
        }
    }
    out.push_str(";Subject=");
    push_value(&mut out, subject, true);
    out
}

fn push_value(out: &mut String, v: &str, always_quote: bool) {
    if !always_quote && !v.contains([',', ';', '=', '"']) {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The name as RFC 4514 writes it: the last RDN first, `+` within an RDN, `,` between, known
/// attribute types by their short names, special characters escaped.
fn rfc4514(name: &X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut out = String::new();
    for (i, rdn) in name
        .iter_rdn()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match registry.get(attr.attr_type()).map(|e| short_name(e.sn())) {
                Some(name) => out.push_str(name),
                None => out.push_str(&attr.attr_type().to_id_string()),
            }
            out.push('=');
            match attr.as_str() {
                Ok(s) => escape_4514(&mut out, s),
                // Not a string type: RFC 4514 §2.4's hex form of the value.
                Err(_) => {
                    out.push('#');
                    out.push_str(&hex(attr.as_slice()));
                }
            }
        }
    }
    out
}

/// RFC 4514 §3's names for the registry's attribute names; others as the registry has them.
fn short_name(sn: &str) -> &str {
    match sn {
        "commonName" => "CN",
        "localityName" => "L",
        "stateOrProvinceName" => "ST",
        "organizationName" => "O",
        "organizationalUnitName" => "OU",
        "countryName" => "C",
        "streetAddress" => "STREET",
        "domainComponent" => "DC",
        "userId" => "UID",
        other => other,
    }
}

fn escape_4514(out: &mut String, s: &str) {
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn cert(sans: Vec<SanType>, cn: Option<&str>) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.subject_alt_names = sans;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "Shop, Inc.");
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    fn uri(s: &str) -> SanType {
        SanType::URI(s.try_into().unwrap())
    }

    fn dns(s: &str) -> SanType {
        SanType::DnsName(s.try_into().unwrap())
    }

    #[test]
    fn the_identity_is_the_uri_san_then_the_dns_san_then_the_cn() {
        let spiffe = "spiffe://cluster.local/ns/shop/sa/orders";
        let c = ClientCert::from_der(&cert(vec![dns("orders.shop"), uri(spiffe)], Some("orders")))
            .unwrap();
        assert_eq!((c.identity(), c.source), (spiffe, IdentitySource::UriSan));
        assert!(c.principal.is_certificate());
        let c = ClientCert::from_der(&cert(
            vec![dns("orders.shop"), dns("b.shop")],
            Some("orders"),
        ))
        .unwrap();
        assert_eq!(
            (c.identity(), c.source),
            ("orders.shop", IdentitySource::DnsSan)
        );
        let c = ClientCert::from_der(&cert(vec![], Some("orders"))).unwrap();
        assert_eq!(
            (c.identity(), c.source),
            ("orders", IdentitySource::SubjectCn)
        );
        assert!(ClientCert::from_der(&cert(vec![], None)).is_err());
        assert!(ClientCert::from_der(b"not der").is_err());
    }

    #[test]
    fn xfcc_is_envoys_format() {
        let der = cert(
            vec![
                uri("spiffe://cluster.local/ns/shop/sa/orders"),
                dns("orders.shop"),
                dns("orders.shop.svc"),
            ],
            Some("orders \"main\""),
        );
        let c = ClientCert::from_der(&der).unwrap();
        let want_hash = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der).as_ref());
        assert_eq!(c.sha256.len(), 64);
        assert_eq!(
            c.xfcc.as_ref().unwrap().to_str().unwrap(),
            format!(
                "Hash={want_hash};URI=spiffe://cluster.local/ns/shop/sa/orders;\
                 DNS=orders.shop;DNS=orders.shop.svc;\
                 Subject=\"CN=orders \\\\\\\"main\\\\\\\",O=Shop\\\\, Inc.\""
            )
        );
        assert_eq!(c.subject, "CN=orders \\\"main\\\",O=Shop\\, Inc.");
    }

    #[test]
    fn values_with_separators_are_quoted() {
        let mut s = String::new();
        push_value(&mut s, "spiffe://a/b;c=d", false);
        assert_eq!(s, "\"spiffe://a/b;c=d\"");
        let mut s = String::new();
        push_value(&mut s, "plain", false);
        assert_eq!(s, "plain");
    }
}

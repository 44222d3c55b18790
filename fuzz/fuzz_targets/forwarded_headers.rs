//! The request headers sent upstream, edited as the proxy does it (`strip_hop_by_hop`,
//! `forwarded::apply`, `strip_identity_headers`, `identity::Standing::set_headers`) on header maps built
//! from fuzz input. No panic; from an untrusted peer no client-sent `X-Forwarded-*`,
//! `Forwarded`, `X-Real-IP` or `X-Auth-Request-*` survives (only the gateway's own values,
//! once each); from a trusted one the identity headers are still the gateway's alone; no
//! hop-by-hop header is left.

#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_authn::Principal;
use portcullis_authz::PolicySet;
use portcullis_gateway::proxy::forwarded::{Downstream, apply, strip_hop_by_hop};
use portcullis_gateway::proxy::guard::strip_identity_headers;
use portcullis_gateway::proxy::identity::Standing;

fn policies() -> &'static PolicySet {
    static P: OnceLock<PolicySet> = OnceLock::new();
    P.get_or_init(PolicySet::empty)
}

/// The headers the gateway writes, by family; any other member of a family is client-sent.
fn family(name: &str) -> bool {
    name.starts_with("x-forwarded-")
        || name == "forwarded"
        || name == "x-real-ip"
        || name.starts_with("x-auth-request-")
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let trusted = ctl & 1 != 0;
    let is_upgrade = ctl & 2 != 0;
    let with_principal = ctl & 4 != 0;
    let client_ip: Option<IpAddr> = match (ctl >> 3) % 3 {
        0 => None,
        1 => Some([203, 0, 113, 7].into()),
        _ => Some("2001:db8::7".parse().unwrap_or(IpAddr::from([0u8; 4]))),
    };
    let prefix = ((ctl >> 5) & 1 != 0).then_some("/api");
    // The last line, when it starts with '@', is the Host the gateway saw.
    let (rest, host) = match rest.iter().rposition(|&b| b == b'\n') {
        Some(i) if rest.get(i + 1) == Some(&b'@') => {
            (&rest[..i], std::str::from_utf8(&rest[i + 2..]).ok())
        }
        _ => (rest, Some("gw.example:8443")),
    };
    let mut h: HeaderMap = portcullis_fuzz::header_map(rest);
    let sent = h.clone();

    let d = Downstream {
        client_ip,
        trusted,
        proto: "https",
        host,
        port: 8443,
    };
    let principal = Principal {
        issuer: Arc::from("https://idp.test/realms/r"),
        sub: "user-1".into(),
        username: Some(String::from_utf8_lossy(rest).chars().take(40).collect()),
        email: Some("alice@example.com".into()),
        groups: vec!["/staff".into()],
        roles: vec!["viewer".into()],
        azp: None,
        exp: 0,
        memo: Default::default(),
    };

    strip_hop_by_hop(&mut h, is_upgrade);
    apply(&mut h, &d, prefix);
    strip_identity_headers(&mut h);
    if with_principal {
        Standing::of(policies(), &principal).set_headers(&mut h);
    }

    for name in [
        "te",
        "trailer",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
    ] {
        assert!(!h.contains_key(name), "hop-by-hop {name} survived");
    }
    if !is_upgrade {
        assert!(!h.contains_key("upgrade") && !h.contains_key("connection"));
    }

    // What the gateway itself writes for each header of the families.
    let own = |name: &str| -> Option<Vec<HeaderValue>> {
        let one = |v: Option<HeaderValue>| v.map(|v| vec![v]);
        match name {
            "x-forwarded-for" | "x-real-ip" if !trusted => {
                one(client_ip.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()))
            }
            "x-forwarded-proto" if !trusted => one(Some(HeaderValue::from_static("https"))),
            "x-forwarded-host" if !trusted => one(host.and_then(|h| HeaderValue::from_str(h).ok())),
            "x-forwarded-port" if !trusted => one(Some(HeaderValue::from(8443u16))),
            "x-forwarded-prefix" if !trusted => one(prefix.map(HeaderValue::from_static)),
            "x-auth-request-user" if with_principal => one(HeaderValue::from_str(principal.user())
                .ok()
                .filter(|_| principal.user().bytes().all(|b| b >= 0x20 && b != 0x7f))),
            "x-auth-request-email" if with_principal => {
                one(Some(HeaderValue::from_static("alice@example.com")))
            }
            "x-auth-request-groups" if with_principal => {
                one(Some(HeaderValue::from_static("/staff")))
            }
            "x-auth-request-roles" => None,
            n if n.starts_with("x-auth-request-") => None,
            _ if trusted => Some(Vec::new()),
            _ => None,
        }
    };
    for name in h.keys() {
        let name = name.as_str();
        if !family(name) {
            continue;
        }
        let got: Vec<&HeaderValue> = h.get_all(name).iter().collect();
        match own(name) {
            // A trusted proxy's chain is kept: only identity headers are checked then.
            Some(expected) if expected.is_empty() => {}
            Some(expected) => assert_eq!(
                got,
                expected.iter().collect::<Vec<_>>(),
                "{name}: client-sent value survived (sent {:?})",
                sent.get_all(name).iter().collect::<Vec<_>>()
            ),
            None => panic!(
                "{name} survived (sent {:?}, trusted={trusted}), now {got:?}",
                sent.get_all(name).iter().collect::<Vec<_>>()
            ),
        }
    }
});

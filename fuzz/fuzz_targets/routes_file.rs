//! A routes file from arbitrary bytes through `RouteTable::load`: no panic, refusals located
//! as `file:line:col`, and a loaded table routes without panicking. Inputs naming a host other
//! than an IP address or `localhost` are skipped: loading resolves upstreams, and fuzzing must
//! not query DNS.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::{Diagnostics, Guard};
use portcullis_core::route::RouteTable;

fuzz_target!(|data: &[u8]| {
    if !portcullis_fuzz::only_local_hosts(data) {
        return;
    }
    let file = portcullis_fuzz::scratch_file("routes.toml", data);
    let guard = Guard {
        guarded_ports: BTreeSet::from([9000, 8081]),
        blocked_prefixes: vec!["/auth/admin".into()],
        allow_non_loopback_management: false,
    };
    let mut diags = Diagnostics::default();
    let table = RouteTable::load(&file, &guard, &mut diags);
    portcullis_fuzz::check_diagnostics(&file, data, &diags, table.is_none());
    let Some(table) = table else {
        return;
    };
    for route in table.routes() {
        for host in [None, route.host.as_deref(), Some("x.example:1")] {
            for path in [
                route.prefix.clone(),
                format!("{}/x", route.prefix),
                format!("{}x", route.prefix),
                "/".to_string(),
            ] {
                if let Some(r) = table.find(host, &path) {
                    assert!(r.upstream_path(&path).starts_with('/'));
                }
            }
        }
        let _ = route.pick(0);
        let _ = route.pick(u64::MAX);
    }
});

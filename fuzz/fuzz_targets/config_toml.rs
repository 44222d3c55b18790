//! `portcullis.toml` from arbitrary bytes through the real loader (`Config::load`), then its
//! `[[trust]]` blocks through `Authenticator::build`: no panic, and a refusal always comes
//! with errors located as `file:line:col` inside the file.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_authn::{Authenticator, AuthnEnv, JwksRegistry};
use portcullis_core::clock::{ManualClock, SharedClock};
use portcullis_core::config::{Config, Diagnostics};

fn env() -> &'static AuthnEnv {
    static E: OnceLock<AuthnEnv> = OnceLock::new();
    E.get_or_init(|| {
        let clock: SharedClock = ManualClock::new(1_800_000_000);
        AuthnEnv {
            jwks: JwksRegistry::new(clock.clone()),
            clock,
            embedded: None,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let file = portcullis_fuzz::scratch_file("portcullis.toml", data);
    let mut diags = Diagnostics::default();
    let loaded = Config::load(&file, &mut diags);
    portcullis_fuzz::check_diagnostics(&file, data, &diags, loaded.is_none());
    let Some(loaded) = loaded else {
        return;
    };
    let mut diags = Diagnostics::default();
    let authn = Authenticator::build(&loaded.source, &loaded.file.trust, env(), &mut diags);
    portcullis_fuzz::check_diagnostics(&file, data, &diags, authn.is_none());
});

//! Links the release binary so that a running gateway keeps fewer of its pages resident
//! (issue 21 item 4): functions in the order `src/text-order.txt` gives (the code that runs
//! first and together, then the rest; `benches/load/text_order.sh` regenerates it), and the
//! relative relocations packed.

use std::env;
use std::path::Path;

fn main() {
    let order = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/text-order.txt");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=PORTCULLIS_LINK_LAYOUT");
    if !wanted() {
        return;
    }
    // Relative relocations packed (DT_RELR, glibc 2.36+): the table the loader reads at start
    // shrinks from ~0.9 MiB, all of it resident, to a few KiB.
    println!("cargo:rustc-link-arg-bin=portcullis=-Wl,-z,pack-relative-relocs");
    if order.is_file() {
        // Names the linker does not find (a changed Cargo.lock or rustc renames symbols) are
        // skipped: the build still links, in the default order for those functions.
        println!(
            "cargo:rustc-link-arg-bin=portcullis=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=portcullis=-Wl,--no-warn-symbol-ordering");
    }
}

/// Only release builds for x86_64 GNU/Linux, which rustc links with its own lld since 1.90
/// (the ordering option is lld's; Debian 12's glibc 2.36 reads packed relocations); not when
/// the config or the rustflags pick another linker, nor with `PORTCULLIS_LINK_LAYOUT=off`.
fn wanted() -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("PORTCULLIS_LINK_LAYOUT") != "off"
        && env::var_os("RUSTC_LINKER").is_none()
        && !["linker=", "fuse-ld", "-lld"]
            .iter()
            .any(|f| flags.contains(f))
}

//! The `portcullis` binary: a thin shell over the library's CLI.

// mimalloc: measured −16 % CPU per proxied request against glibc malloc (notes/pingora.md).
// Default builds leave transparent huge pages off (feature `small-rss`): with them the idle
// gateway held 25 MiB, without 13 MiB, for ~10 % more CPU per request (benches/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis::cli::main()
}

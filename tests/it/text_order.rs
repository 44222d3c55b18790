//! The release build's text order, end to end on a small program: callgrind runs it (as
//! `benches/load/text_order.sh` runs the gateway), `benches/load/text_order.py` turns the runs
//! into an order, and rustc's lld lays the functions out in it with the options `build.rs`
//! gives the release binary. The gateway's own release build is not made here (minutes).

use std::path::Path;
use std::process::Command;

const PROGRAM: &str = r#"
#[inline(never)] fn never_runs(x: u64) -> u64 { x.wrapping_mul(7) ^ 0x5555 }
#[inline(never)] fn at_start(x: u64) -> u64 { x.rotate_left(3) ^ 0x1234 }
#[inline(never)] fn per_request(x: u64) -> u64 { x.wrapping_add(x >> 2) ^ 0x4321 }
fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let mut x = std::hint::black_box(arg.len() as u64);
    match arg.as_str() {
        "serve" => for _ in 0..1000 { x = per_request(x) },
        "start" => x = at_start(x),
        _ => x = never_runs(x),
    }
    println!("{x}");
}
"#;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

/// The program's own functions (`demo::…`) by address, as `nm -n` lists them.
fn laid_out(binary: &Path) -> Vec<String> {
    run(Command::new("nm").arg("-n").arg(binary))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|name| name.starts_with("_ZN4demo"))
        .map(str::to_owned)
        .collect()
}

/// Where the name containing `part` is in `names`; a missing one fails the test (an `Option`
/// would compare `None` as before everything).
fn position(names: &[impl AsRef<str>], part: &str) -> usize {
    names
        .iter()
        .position(|n| n.as_ref().contains(part))
        .unwrap_or_else(|| {
            panic!(
                "no {part} in {:?}",
                names.iter().map(AsRef::as_ref).collect::<Vec<_>>()
            )
        })
}

#[test]
fn functions_that_ran_are_laid_out_first_hottest_group_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("demo.rs");
    std::fs::write(&src, PROGRAM).expect("write");
    let rustc = |out: &str, extra: &[String]| {
        run(
            Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
                .args(["-O", "-C", "codegen-units=1", "--crate-name", "demo", "-o"])
                .arg(dir.path().join(out))
                .arg(&src)
                .args(extra),
        );
        dir.path().join(out)
    };
    let plain = rustc("plain", &[]);
    // Without an order, the linker keeps the source's: the function that never runs first.
    let before = laid_out(&plain);
    assert!(before[0].contains("never_runs"), "{before:?}");

    // One callgrind run per phase, as text_order.sh dumps one file per phase.
    for phase in ["serve", "start"] {
        run(Command::new("valgrind")
            .args(["--tool=callgrind", "--demangle=no", "--dump-instr=no"])
            .arg(format!(
                "--callgrind-out-file={}",
                dir.path().join(phase).display()
            ))
            .arg(&plain)
            .arg(phase));
    }
    let order = dir.path().join("order.txt");
    let group = |name: &str, phase: &str| format!("{name}={}", dir.path().join(phase).display());
    let said = run(Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/load/text_order.py"))
        .arg("--binary")
        .arg(&plain)
        .arg("--out")
        .arg(&order)
        .args([
            "--group",
            &group("hot", "serve"),
            "--group",
            &group("start-up", "start"),
        ]));
    let text = std::fs::read_to_string(&order).expect("order");
    let listed: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    // Only what ran, the request phase's function before the start-up's; `main` ran in both
    // phases and is listed once, in the first.
    assert!(
        !listed.iter().any(|n| n.contains("never_runs")),
        "{said}\n{text}"
    );
    assert!(
        position(&listed, "per_request") < position(&listed, "at_start"),
        "{said}\n{text}"
    );
    position(&listed, "4main");
    assert_eq!(listed.iter().filter(|n| n.contains("4main")).count(), 1);

    // Linked with build.rs's options: the order holds in the binary, and the function that
    // never ran goes after every function that did.
    let ordered = rustc(
        "ordered",
        &[
            "-C".into(),
            format!("link-arg=-Wl,--symbol-ordering-file={}", order.display()),
            "-C".into(),
            "link-arg=-Wl,--no-warn-symbol-ordering".into(),
            "-C".into(),
            "link-arg=-Wl,-z,pack-relative-relocs".into(),
        ],
    );
    let after = laid_out(&ordered);
    let pos = |part: &str| position(&after, part);
    assert!(pos("per_request") < pos("at_start"), "{after:?}");
    assert!(pos("at_start") < pos("never_runs"), "{after:?}");
    assert!(pos("4main") < pos("never_runs"), "{after:?}");
    // `--check` tells a binary laid out in the order from one that is not.
    let check = |binary: &Path| {
        run(Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/load/text_order.py"))
            .arg("--binary")
            .arg(binary)
            .arg("--check")
            .arg(&order))
    };
    let (on, off) = (check(&ordered), check(&plain));
    assert!(on.contains("; applied"), "{on}");
    assert!(off.contains("NOT applied"), "{off}");
    // The packed relocations leave a binary that still runs.
    assert!(!run(Command::new(&ordered).arg("serve")).trim().is_empty());
}

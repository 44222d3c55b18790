//! The criterion regression gate's decision (`benches/gate.py`, run by `benches/gate.sh` and
//! `make bench-gate`): its Python tests (`benches/test_gate.py`) feed it criterion result
//! files showing a regression, no change, an improvement, stale results and broken files, and
//! check its exit status and table. The benches themselves are not run here (minutes).

use std::process::Command;

#[test]
fn the_bench_gate_fails_on_a_regression_and_passes_otherwise() {
    let out = Command::new("python3")
        .args(["-m", "unittest", "-v", "benches/test_gate.py"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    // Every case ran (unittest also succeeds when it finds no tests).
    assert!(text.contains("Ran 7 tests"), "{text}");
}

"""Tests of the regression gate's decision (`benches/gate.py`), on criterion result files
written here the way criterion 0.8 lays them out; run by `tests/it/bench_gate.rs` (so by
`make test`), or alone: `python3 -m unittest benches/test_gate.py`.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

GATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gate.py")


def estimate(point, lower, upper):
    return {
        "confidence_interval": {"confidence_level": 0.95, "lower_bound": lower,
                                "upper_bound": upper},
        "point_estimate": point,
        "standard_error": abs(upper - lower) / 4,
    }


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)


def bench(root, directory, full_id, base_ns, new_ns, change, baseline="gate"):
    """One benchmark's results: baseline and new means (ns), and the change estimate
    (point, lower, upper) as fractions."""
    d = os.path.join(root, directory)
    times = lambda ns: {k: estimate(ns, ns * 0.98, ns * 1.02)
                        for k in ("mean", "median", "median_abs_dev", "std_dev")}
    write(os.path.join(d, baseline, "estimates.json"), dict(times(base_ns), slope=None))
    write(os.path.join(d, "new", "estimates.json"), dict(times(new_ns), slope=None))
    write(os.path.join(d, "new", "benchmark.json"), {
        "group_id": full_id.split("/")[0], "function_id": None, "value_str": None,
        "throughput": None, "full_id": full_id, "directory_name": directory,
        "title": full_id})
    write(os.path.join(d, "change", "estimates.json"),
          {"mean": estimate(*change), "median": estimate(*change)})


def gate(root, *args):
    p = subprocess.run([sys.executable, GATE, "--criterion", root, *args],
                       capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


class Gate(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        write(os.path.join(self.root, "report", "index.html"), {})

    def tearDown(self):
        self.tmp.cleanup()

    def test_no_change_passes_with_a_table(self):
        bench(self.root, "normalize/canonical", "normalize/canonical", 40.0, 41.0,
              (0.025, -0.01, 0.06))
        bench(self.root, "rbac_decide_allow", "rbac/decide_allow", 30.0, 29.0,
              (-0.03, -0.05, -0.01))
        code, out, err = gate(self.root)
        self.assertEqual(code, 0, out + err)
        self.assertIn("| `normalize/canonical` | 40 ns | 41 ns | +2.5 % (-1.0 % … +6.0 %) "
                      "| no change |", out)
        self.assertIn("| `rbac/decide_allow` | 30 ns | 29 ns | -3.0 %", out)
        self.assertIn("none regressed", err)

    def test_a_regression_fails_and_is_named(self):
        bench(self.root, "normalize/canonical", "normalize/canonical", 40.0, 41.0,
              (0.025, -0.01, 0.06))
        bench(self.root, "authenticate/rs256_cached", "authenticate/rs256/cached", 900.0,
              1200.0, (0.33, 0.25, 0.41))
        code, out, err = gate(self.root)
        self.assertEqual(code, 1, out + err)
        self.assertIn("REGRESSED authenticate/rs256/cached: mean +33.0 %", err)
        self.assertNotIn("REGRESSED normalize", err)
        self.assertIn("| **regressed** |", out)

    def test_a_change_above_the_threshold_but_not_wholly_is_no_regression(self):
        # The point is +15 %, but the interval reaches down to +5 %: not certain enough.
        bench(self.root, "cookie_open/aead_open", "cookie_open/aead_open", 1900.0, 2185.0,
              (0.15, 0.05, 0.25))
        code, out, err = gate(self.root)
        self.assertEqual(code, 0, out + err)
        # A lower threshold catches it.
        code, _, err = gate(self.root, "--threshold", "0.04")
        self.assertEqual(code, 1, err)
        self.assertIn("REGRESSED cookie_open/aead_open", err)

    def test_an_improvement_passes(self):
        bench(self.root, "route_match_1000/miss", "route_match_1000/miss", 100.0, 50.0,
              (-0.5, -0.55, -0.45))
        code, out, err = gate(self.root)
        self.assertEqual(code, 0, out + err)
        self.assertIn("| improved |", out)

    def test_results_older_than_the_run_are_not_judged(self):
        bench(self.root, "old/bench", "old/bench", 10.0, 20.0, (1.0, 0.9, 1.1))
        past = time.time() - 3600
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                os.utime(os.path.join(dirpath, f), (past, past))
        stamp = os.path.join(self.root, "stamp")
        write(stamp, {})
        bench(self.root, "normalize/canonical", "normalize/canonical", 40.0, 40.0,
              (0.0, -0.02, 0.02))
        code, out, err = gate(self.root, "--since", stamp)
        self.assertEqual(code, 0, out + err)
        self.assertNotIn("old/bench", out)
        # Without --since the stale regression counts.
        code, _, err = gate(self.root)
        self.assertEqual(code, 1, err)

    def test_nothing_to_judge_is_an_error(self):
        code, _, err = gate(self.root)
        self.assertEqual(code, 2)
        self.assertIn("no fresh criterion results", err)
        # A broken change file is an error too, not a pass.
        bench(self.root, "normalize/canonical", "normalize/canonical", 40.0, 40.0,
              (0.0, -0.02, 0.02))
        with open(os.path.join(self.root, "normalize/canonical/change/estimates.json"), "w") as f:
            f.write("{")
        code, _, err = gate(self.root)
        self.assertEqual(code, 2, err)

    def test_figures_only_prints_this_runs_figures(self):
        bench(self.root, "rbac_decide_allow", "rbac/decide_allow", 30.0, 1500.0,
              (0.0, -0.02, 0.02))
        code, out, err = gate(self.root, "--figures-only")
        self.assertEqual(code, 0, out + err)
        self.assertIn("| `rbac/decide_allow` | 1.5 µs (1.47 µs – 1.53 µs) |", out)
        # Criterion's own figure: the slope, when it sampled linearly.
        new = os.path.join(self.root, "rbac_decide_allow", "new", "estimates.json")
        with open(new, encoding="utf-8") as f:
            e = json.load(f)
        e["slope"] = estimate(1600.0, 1550.0, 1650.0)
        write(new, e)
        code, out, err = gate(self.root, "--figures-only")
        self.assertIn("| `rbac/decide_allow` | 1.6 µs (1.55 µs – 1.65 µs) |", out)


if __name__ == "__main__":
    unittest.main()

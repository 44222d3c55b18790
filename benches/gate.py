"""The decision of the criterion regression gate (`benches/gate.sh`, `make bench-gate`).

usage: gate.py [--criterion DIR] [--baseline NAME] [--threshold FRACTION] [--since FILE]
               [--figures-only]

Reads criterion's output under DIR (default `$CARGO_TARGET_DIR/criterion`, else
`target/criterion`): for each benchmark, `new/estimates.json` (this run), `NAME/estimates.json`
(the saved baseline) and `change/estimates.json` (criterion's estimate of the relative change
of the mean, with its 95 % confidence interval); the times shown are criterion's own figure
(the slope when it sampled linearly, else the mean). A benchmark regressed when the whole
interval lies above `+threshold` (default 0.10: slower by more than 10 %, and not by chance);
one regression makes the exit status 1 and is named on stderr. `--since FILE`: only results
written after FILE (the gate's start), so a benchmark that did not run this time is not
judged on an old change file. Prints a Markdown table of the figures for `benches/README.md`.
`--figures-only`: the table of this run's figures, no comparison (after `--save-baseline`).
Exit status 2: nothing to judge (no results, or an unreadable file).
"""

import argparse
import json
import os
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_pct(x):
    return f"{x * 100:+.1f} %"


def results(root, since, need_change):
    """(id, bench dir) of every benchmark with fresh results under `root`, sorted by id."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "report"]
        if os.path.basename(dirpath) != "new" or "estimates.json" not in filenames:
            continue
        bench = os.path.dirname(dirpath)
        marker = os.path.join(bench, "change", "estimates.json") if need_change \
            else os.path.join(dirpath, "estimates.json")
        if not os.path.exists(marker):
            continue
        if since is not None and os.path.getmtime(marker) < since:
            continue
        try:
            ident = load(os.path.join(dirpath, "benchmark.json"))["full_id"]
        except (OSError, KeyError, ValueError):
            ident = os.path.relpath(bench, root)
        found.append((ident, bench))
    return sorted(found)


def typical(estimates):
    """The figure criterion prints: the slope of time over iterations when it sampled
    linearly, the mean otherwise."""
    return estimates.get("slope") or estimates["mean"]


def judge(change, threshold):
    """'regressed', 'improved' or 'no change' from a change/estimates.json object."""
    ci = change["mean"]["confidence_interval"]
    if ci["lower_bound"] > threshold:
        return "regressed"
    if ci["upper_bound"] < -threshold:
        return "improved"
    return "no change"


def main(argv):
    default_root = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--criterion", default=default_root)
    ap.add_argument("--baseline", default="gate")
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--since", help="a file written when the run started")
    ap.add_argument("--figures-only", action="store_true")
    a = ap.parse_args(argv)
    since = os.path.getmtime(a.since) if a.since else None

    found = results(a.criterion, since, not a.figures_only)
    if not found:
        print(f"gate: no fresh criterion results under {a.criterion}", file=sys.stderr)
        return 2
    regressed = []
    try:
        if a.figures_only:
            print("| benchmark | time (95 % CI) |")
            print("|---|---|")
            for ident, bench in found:
                m = typical(load(os.path.join(bench, "new", "estimates.json")))
                ci = m["confidence_interval"]
                print(f"| `{ident}` | {fmt_time(m['point_estimate'])} "
                      f"({fmt_time(ci['lower_bound'])} – {fmt_time(ci['upper_bound'])}) |")
            return 0
        print(f"| benchmark | baseline `{a.baseline}` | this run | change of the mean (95 % CI) "
              f"| verdict (±{a.threshold * 100:g} %) |")
        print("|---|---|---|---|---|")
        for ident, bench in found:
            new = typical(load(os.path.join(bench, "new", "estimates.json")))["point_estimate"]
            base_file = os.path.join(bench, a.baseline, "estimates.json")
            base = typical(load(base_file))["point_estimate"] if os.path.exists(base_file) else None
            change = load(os.path.join(bench, "change", "estimates.json"))
            m = change["mean"]
            ci = m["confidence_interval"]
            verdict = judge(change, a.threshold)
            if verdict == "regressed":
                regressed.append((ident, m["point_estimate"], ci))
            print(f"| `{ident}` | {fmt_time(base) if base is not None else '–'} | "
                  f"{fmt_time(new)} | {fmt_pct(m['point_estimate'])} "
                  f"({fmt_pct(ci['lower_bound'])} … {fmt_pct(ci['upper_bound'])}) | "
                  f"{'**regressed**' if verdict == 'regressed' else verdict} |")
    except (OSError, KeyError, TypeError, ValueError) as e:
        print(f"gate: unreadable criterion results: {e!r}", file=sys.stderr)
        return 2
    for ident, point, ci in regressed:
        print(f"gate: REGRESSED {ident}: mean {fmt_pct(point)} "
              f"(95 % CI {fmt_pct(ci['lower_bound'])} … {fmt_pct(ci['upper_bound'])}, "
              f"threshold +{a.threshold * 100:g} %)", file=sys.stderr)
    if regressed:
        return 1
    print(f"gate: {len(found)} benchmarks, none regressed beyond +{a.threshold * 100:g} %",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

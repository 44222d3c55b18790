#!/usr/bin/env python3
"""Self cost per function from a callgrind.out file, per request.

callgrind_annotate attributes a stripped-of-line-info, fat-LTO binary's whole cost to the
thread's entry (clone), so this reads the file itself: every cost line belongs to the current
`fn=`, except the line right after a `calls=` line (the callee's inclusive cost).

usage: callgrind_top.py FILE [REQUESTS] [N]
"""
import collections
import re
import sys


def main():
    path = sys.argv[1]
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    names = {}
    cost = collections.Counter()
    fn = None
    skip_next = False
    ref = re.compile(r"\((\d+)\)(?:\s+(.*))?")

    def name(spec):
        m = ref.match(spec)
        if not m:
            return spec
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                fn = name(line[3:].strip())
            elif line.startswith(("cfn=", "cfi=", "cob=")):
                if line.startswith("cfn="):
                    name(line[4:].strip())
            elif line.startswith("calls="):
                skip_next = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and fn is not None:
                    cost[fn] += int(parts[1])
    total = sum(cost.values())
    print(f"total {total:,} instructions, {total / requests:,.0f} per request")
    for f_name, c in cost.most_common(top):
        print(f"{c / requests:10,.0f} {100 * c / total:5.1f}%  {f_name[:150]}")


if __name__ == "__main__":
    main()

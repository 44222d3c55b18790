#!/usr/bin/env python3
"""Self cost per function from a callgrind.out file, per request.

callgrind_annotate attributes a stripped-of-line-info, fat-LTO binary's whole cost to the
thread's entry (clone), so this reads the file itself: every cost line belongs to the current
`fn=`, except the line right after a `calls=` line (the callee's inclusive cost).

usage: callgrind_top.py FILE [REQUESTS] [N]
       callgrind_top.py --callers PATTERN FILE [REQUESTS] [N]
The second form lists who calls the functions whose name contains PATTERN (memcpy, malloc):
calls and inclusive instructions per request for each caller, so a spread-thin cost such as
moving large futures can be traced to the frames that move them.
"""
import collections
import re
import sys


REF = re.compile(r"\((\d+)\)(?:\s+(.*))?")
# callgrind marks recursion levels (`name'2`); they are counted as one function.
RECURSION = re.compile(r"'\d+$")


def parse(path):
    """(self instructions per function, {(caller, callee): [calls, inclusive instructions]})
    of one callgrind.out file. Also used by text_order.py."""
    names = {}
    cost = collections.Counter()
    edges = collections.defaultdict(lambda: [0, 0])
    fn = None
    cfn = None
    pending_calls = None

    def name(spec):
        m = REF.match(spec)
        if not m:
            return spec
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return RECURSION.sub("", names.get(m.group(1), spec))

    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                fn = name(line[3:].strip())
            elif line.startswith("cfn="):
                cfn = name(line[4:].strip())
            elif line.startswith("calls="):
                pending_calls = int(line[6:].split()[0])
            elif line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if pending_calls is not None:
                    # The callee's inclusive cost, not this function's.
                    if cfn is not None and len(parts) >= 2:
                        e = edges[(fn, cfn)]
                        e[0] += pending_calls
                        e[1] += int(parts[1])
                    pending_calls = None
                    continue
                if len(parts) >= 2 and fn is not None:
                    cost[fn] += int(parts[1])
    return cost, edges


def main():
    args = sys.argv[1:]
    callers_of = None
    if args[:1] == ["--callers"]:
        callers_of, args = args[1], args[2:]
    path = args[0]
    requests = int(args[1]) if len(args) > 1 else 1
    top = int(args[2]) if len(args) > 2 else 40
    cost, edges = parse(path)
    total = sum(cost.values())
    if callers_of is not None:
        rows = [(v[1], v[0], caller, callee) for (caller, callee), v in edges.items()
                if callers_of in callee]
        rows.sort(reverse=True)
        print(f"callers of *{callers_of}*: calls/request, instructions/request (inclusive)")
        for incl, calls, caller, callee in rows[:top]:
            print(f"{calls / requests:7.2f} {incl / requests:9,.0f}  {caller[:110]}  ->  {callee[:140]}")
        return
    print(f"total {total:,} instructions, {total / requests:,.0f} per request")
    for f_name, c in cost.most_common(top):
        print(f"{c / requests:10,.0f} {100 * c / total:5.1f}%  {f_name[:150]}")


if __name__ == "__main__":
    main()

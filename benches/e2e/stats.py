#!/usr/bin/env python3
"""Small helpers for benches/e2e.sh: medians, formatting, reading pgshadow's JSON report and stderr, the table.

    stats.py median X...                 the median of the numbers, unformatted
    stats.py time X...                   seconds as a table figure: "1.62 s (1.60 – 1.64 s, n=5)"
    stats.py ms X...                     the same for milliseconds
    stats.py ms-derived X                one figure computed from medians: "110 ms (from medians)"
    stats.py sub A B                     A - B
    stats.py overhead MEASURED BASE      (MEASURED - BASE) / BASE as a percentage: "+12.3 %"
    stats.py json FILE PATH              a value of a JSON file: PATH like statements.0.duration_ms
    stats.py restore-seconds FILE        the seconds=X of pgshadow's "archive restored" line (-v stderr)
    stats.py psql-time FILE              the "Time: X ms" lines of psql's \\timing, one per line
    stats.py table FILE                  a TSV of benchmark, figure, how measured as a Markdown table
    stats.py changed FILE summary|estimate   rows updated + destroyed in a report's summary or estimate ("unknown")
    stats.py accuracy FILE               benches/accuracy.sh's TSV (plan, SQL, truth, estimates...) as Markdown
"""

import json
import re
import statistics
import sys


def numbers(args):
    return [float("nan") if a == "n/a" else float(a) for a in args]


def human(value, unit):
    """A duration in the unit that reads best: ms below one second, else s."""
    seconds = value if unit == "s" else value / 1000.0
    if abs(seconds) >= 1.0:
        return f"{seconds:.2f}", "s"
    ms = seconds * 1000.0
    return (f"{ms:.0f}" if abs(ms) >= 100 else f"{ms:.1f}" if abs(ms) >= 10 else f"{ms:.2f}"), "ms"


def figure(values, unit):
    if any(v != v for v in values):  # nan: a figure that could not be read
        return "n/a"
    med = statistics.median(values)
    text, shown = human(med, unit)
    if len(values) == 1:
        return f"{text} {shown} (n=1)"
    scale = 1.0 if unit == shown else (1000.0 if unit == "s" else 0.001)
    lo, hi = min(values) * scale, max(values) * scale
    digits = 2 if shown == "s" else (0 if med * (scale) >= 100 else 1)
    return f"{text} {shown} ({lo:.{digits}f} – {hi:.{digits}f} {shown}, median of {len(values)})"


def json_get(path, dotted):
    with open(path) as f:
        value = json.load(f)
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def changed(path, part):
    """Rows a plan changes by a report's `summary` (measured) or `estimate`: updated + destroyed."""
    with open(path) as f:
        report = json.load(f)
    totals = report.get(part)
    if totals is None or (part == "summary" and not totals.get("rows_known", True)):
        return "unknown"
    updated, destroyed = totals.get("rows_updated"), totals.get("rows_destroyed")
    if updated is None or destroyed is None:  # an estimate's totals are null when a table is neither known nor estimated
        return "unknown"
    return str(int(updated) + int(destroyed))


ESTIMATES = ["--profile", "--synthesize", "--sample 1", "--sample 10"]


def accuracy(path):
    """One row per plan, then the median and worst ratio (estimate / truth) of each estimate."""
    rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
    out = ["| plan | truth | " + " | ".join(ESTIMATES) + " |", "|---|---:|" + "---:|" * len(ESTIMATES)]
    ratios = [[] for _ in ESTIMATES]
    zeros = [0 for _ in ESTIMATES]
    for name, sql, truth, *estimates in rows:
        cells = []
        for k, est in enumerate(estimates):
            if est == "unknown" or truth == "unknown":
                cells.append(est)
                ratios[k].append(float("inf"))
                continue
            t, e = int(truth), int(est)
            if t > 0 and e == 0:
                zeros[k] += 1
            r = (e / t) if t > 0 else (1.0 if e == 0 else float("inf"))
            ratios[k].append(r)
            cells.append(f"{e:,} ({r:.2f}x)")
        out.append(f"| `{sql}` | {int(truth):,} | " + " | ".join(cells) + " |" if truth != "unknown" else
                   f"| `{sql}` | unknown | " + " | ".join(cells) + " |")

    def spread(r):
        return max(r, 1 / r) if r > 0 else float("inf")

    def fmt(x):
        return "∞" if x == float("inf") else f"{x:.2f}x"

    out.append("| **median ratio** | | " + " | ".join(fmt(statistics.median(r)) for r in ratios) + " |")
    out.append("| **worst (max of ratio, 1/ratio)** | | " + " | ".join(fmt(max(spread(x) for x in r)) for r in ratios) + " |")
    out.append("| **0 where the truth is above 0** | | " + " | ".join(str(z) for z in zeros) + " |")
    return "\n".join(out)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "median":
        print(statistics.median(numbers(args)))
    elif cmd == "time":
        print(figure(numbers(args), "s"))
    elif cmd == "ms":
        print(figure(numbers(args), "ms"))
    elif cmd == "ms-derived":
        text, shown = human(numbers(args)[0], "ms")
        print(f"{text} {shown} (from medians)")
    elif cmd == "sub":
        a, b = numbers(args)
        print(a - b)
    elif cmd == "overhead":
        measured, base = numbers(args)
        print(f"{(measured - base) / base * 100:+.1f} %")
    elif cmd == "changed":
        print(changed(args[0], args[1]))
    elif cmd == "accuracy":
        print(accuracy(args[0]))
    elif cmd == "json":
        value = json_get(args[0], args[1])
        print(json.dumps(value) if isinstance(value, (dict, list)) else value)
    elif cmd == "restore-seconds":
        with open(args[0], errors="replace") as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
        found = [m for line in text.splitlines() if "archive restored" in line
                 for m in re.findall(r"\bseconds=([0-9.eE+-]+)", line)]
        if not found:
            sys.exit(f"no 'archive restored ... seconds=X' line in {args[0]}")
        print(found[-1])
    elif cmd == "psql-time":
        with open(args[0], errors="replace") as f:
            times = re.findall(r"^Time: ([0-9.]+) ms", f.read(), re.M)
        if not times:
            sys.exit(f"no 'Time: X ms' line in {args[0]}")
        print("\n".join(times))
    elif cmd == "table":
        print("| benchmark | figure | how measured |")
        print("|---|---|---|")
        with open(args[0]) as f:
            for line in f:
                cells = [c.replace("|", "\\|") for c in line.rstrip("\n").split("\t")]
                print("| " + " | ".join(cells) + " |")
    else:
        sys.exit(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)

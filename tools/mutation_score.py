"""The mutation score per module, from `mutmut results --all true` (on stdin or a file):
killed (a test failed, or the mutant hung past its timeout) over all mutants tested;
'no tests' counts as survived, since no test would notice."""

import collections
import re
import sys

KILLED = {"killed", "timeout", "caught by type check", "segfault"}
LEFT_OUT = {"not checked", "skipped"}


def score(lines):
    by_module = collections.defaultdict(collections.Counter)
    for line in lines:
        m = re.match(r"\s*([\w.]+?)\.x[_ǁ].*: (.+)$", line.rstrip())
        if m:
            by_module[m[1]][m[2]] += 1
    return by_module


def main():
    source = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    by_module = score(source)
    print(f"{'module':34} {'killed':>7} {'survived':>9} {'no tests':>9} {'score':>7}")
    total = collections.Counter()
    for module, c in sorted(by_module.items()):
        total.update(c)
        _row(module, c)
    _row("all", total)


def _row(name, c):
    killed = sum(c[s] for s in KILLED)
    tested = sum(n for s, n in c.items() if s not in LEFT_OUT)
    pct = f"{100 * killed / tested:.1f}%" if tested else "--"
    print(f"{name:34} {killed:>7} {c['survived']:>9} {c['no tests']:>9} {pct:>7}"
          + (f"  ({sum(c[s] for s in LEFT_OUT)} not run)" if any(c[s] for s in LEFT_OUT) else ""))


if __name__ == "__main__":
    main()

"""Regenerate cnncalc/language/_lark.py from grammar/cnncalc.lark (``make grammar``).

Lark's standalone tool writes a parser that needs no Lark at run time. Its state numbering
varies between runs, so the module records the grammar's hash, and a test checks that
hash and that the module parses like a parser built from the grammar."""

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = ROOT / "grammar" / "cnncalc.lark"
OUT = ROOT / "cnncalc" / "language" / "_lark.py"


def digest() -> str:
    return hashlib.sha256(GRAMMAR.read_bytes()).hexdigest()


def main():
    code = subprocess.run([sys.executable, "-m", "lark.tools.standalone", "--maybe_placeholders",
                           str(GRAMMAR)], check=True, capture_output=True, text=True).stdout
    OUT.write_text(f"# generated from grammar/cnncalc.lark by 'make grammar'; grammar sha256: "
                   f"{digest()}\n" + code)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

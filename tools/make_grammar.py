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


# The generated module sets up a 'lark' logger that it writes to only at CRITICAL level;
# importing logging is a fifth of the module's import time, so a silent stand-in replaces it.
_LOGGING = (
    'import logging\n',
    'logger: logging.Logger = logging.getLogger("lark")\n'
    'logger.addHandler(logging.StreamHandler())\n',
    'logger.setLevel(logging.CRITICAL)\n',
)
_SILENT = ("class _Silent:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n"
           "\n\nlogger = _Silent()  # cnncalc: the generated logger, silenced (see make_grammar.py)\n")


def _without_logging(code: str) -> str:
    # pickle, zlib and base64 serve only a compressed table or Lark's cache, neither used here
    code = code.replace("import pickle, zlib, base64\n", "")
    for part in _LOGGING:
        if part not in code:
            raise SystemExit(f"make_grammar: the generated parser changed; update _LOGGING ({part!r})")
    code = code.replace(_LOGGING[0], "").replace(_LOGGING[2], "")
    return code.replace(_LOGGING[1], _SILENT)


def main():
    # one lexer for the whole language: the contextual lexer compiles a regex per parser
    # state on the first parse, a tenth of a second's start-up spent on 41 regexes
    code = subprocess.run([sys.executable, "-m", "lark.tools.standalone", "--maybe_placeholders",
                           "-l", "basic", str(GRAMMAR)], check=True, capture_output=True,
                          text=True).stdout
    code = _without_logging(code)
    OUT.write_text(f"# generated from grammar/cnncalc.lark by 'make grammar'; grammar sha256: "
                   f"{digest()}\n" + code)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

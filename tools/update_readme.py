"""Rewrite the README's layer table from the kinds' definitions (``make readme``)."""

from pathlib import Path

from cnncalc.layers.catalogue import catalogue

README = Path(__file__).resolve().parent.parent / "README.md"


def main():
    text = README.read_text()
    head, rest = text.split("<!-- layers:begin -->\n")
    _, tail = rest.split("<!-- layers:end -->")
    README.write_text(f"{head}<!-- layers:begin -->\n{catalogue('markdown')}<!-- layers:end -->{tail}")
    print("README.md: layer table rewritten")


if __name__ == "__main__":
    main()

"""Generated sections of README.md: the text between two HTML comment markers, written from the
code that defines it (silver views, gold tables, named queries), so the docs cannot go stale.

Each generator module (views.dictionary, gold_dictionary) renders its markdown and hands it to
`GeneratedSection.main`, which prints it, writes it into README.md, or checks that README.md
already holds it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def cell(text: str) -> str:
    """Text made safe for one markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class GeneratedSection:
    """One generated README section: its markers, what it is called and how to regenerate it."""

    name: str  # e.g. "data-dictionary": the markers are <!-- NAME:start --> and <!-- NAME:end -->
    title: str  # what messages call it, e.g. "silver data dictionary"
    module: str  # the generator, run as `python -m MODULE --write`

    @property
    def start(self) -> str:
        return f"<!-- {self.name}:start -->"

    @property
    def end(self) -> str:
        return f"<!-- {self.name}:end -->"

    @property
    def regenerate(self) -> str:
        return f"spark-jobs/.venv/bin/python -m {self.module} --write"

    def replace(self, readme_text: str, section: str) -> str:
        """`readme_text` with the text between the markers replaced by `section`."""
        if self.start not in readme_text or self.end not in readme_text:
            raise ValueError(f"README.md lacks the markers {self.start} and {self.end}")
        head, rest = readme_text.split(self.start, 1)
        _, tail = rest.split(self.end, 1)
        return f"{head}{self.start}\n{section}{self.end}{tail}"

    def main(
        self,
        render: Callable[[argparse.Namespace], str],
        argv: Sequence[str] | None = None,
        doc: str | None = None,
        extra_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    ) -> int:
        """CLI: print the section, `--write` it into README.md, or `--check` (exit 1 when stale)."""
        parser = argparse.ArgumentParser(
            description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--write", action="store_true", help="update README.md between the markers"
        )
        mode.add_argument("--check", action="store_true", help="exit 1 when README.md is stale")
        parser.add_argument("--readme", type=Path, default=README, help="README to update or check")
        if extra_arguments is not None:
            extra_arguments(parser)
        args = parser.parse_args(argv)
        section = render(args)
        if not (args.write or args.check):
            sys.stdout.write(section)
            return 0
        current = args.readme.read_text(encoding="utf-8")
        updated = self.replace(current, section)
        if args.check:
            if updated != current:
                print(
                    f"{args.readme}: {self.title} is stale; run {self.regenerate}", file=sys.stderr
                )
                return 1
            return 0
        if updated != current:
            args.readme.write_text(updated, encoding="utf-8")
        print(f"{args.readme}: {self.title} up to date ({len(section.splitlines())} lines)")
        return 0

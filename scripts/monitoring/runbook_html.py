#!/usr/bin/env python3
"""Renders RUNBOOK.md to docker/gateway/RUNBOOK.html, the page the gateway serves at
http://127.0.0.1:8080/RUNBOOK.md and the default target of every runbook link in a notification
(`modelwatch.runbook_base` in alertmanager/templates/modelwatch.tmpl). Each heading gets the
anchor GitHub would give it ("## HighErrorRate" -> #higherrorrate), which is what the alerts'
`runbook_url` annotations name.

    python3 scripts/monitoring/runbook_html.py           write the page
    python3 scripts/monitoring/runbook_html.py --check   exit 1 if it is not up to date

Needs Markdown (scripts/requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import markdown
import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "RUNBOOK.md"
TARGET = ROOT / "docker" / "gateway" / "RUNBOOK.html"

STYLE = """body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; }
code { background: #f3f3f3; padding: 0 0.2em; } pre code { display: block; padding: 0.6em; overflow-x: auto; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } :target { background: #fff6d5; }"""


def table_pipes(text: str) -> str:
    """A table row's `\\|` is a pipe inside its cell on GitHub, in code spans too (the HighLatencyP99
    row's regex). Python-Markdown keeps the backslash in code spans, where it splits no cell
    anyway: drop it there."""
    return "".join(
        re.sub(r"`[^`]*`", lambda m: m.group(0).replace("\\|", "|"), line) if line.startswith("|") else line
        for line in text.splitlines(keepends=True))


def render() -> str:
    body = markdown.markdown(
        table_pipes(SOURCE.read_text()), extensions=["tables", "fenced_code", "toc"],
        # GitHub's anchors: lower case, punctuation dropped, spaces to hyphens.
        extension_configs={"toc": {"slugify": lambda value, sep: "-".join(
            "".join(c for c in value.lower() if c.isalnum() or c in " -_").split(" "))}})
    return ("<!DOCTYPE html>\n<!-- Generated from RUNBOOK.md by scripts/monitoring/runbook_html.py; do not edit. -->\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape("modelwatch runbook")}</title>\n'
            f"<style>\n{STYLE}\n</style></head>\n<body>\n{body}\n</body></html>\n")


def missing_anchors(page: str) -> list[str]:
    """runbook_url anchors of the Prometheus alert rules that the page does not have."""
    missing = []
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                anchor = (rule.get("annotations") or {}).get("runbook_url", "").partition("#")[2]
                if "alert" in rule and f'id="{anchor}"' not in page:
                    missing.append(f"{rule['alert']} (#{anchor})")
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed page is out of date")
    args = parser.parse_args()
    page = render()
    if args.check:
        if not TARGET.is_file() or TARGET.read_text() != page:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python3 scripts/monitoring/runbook_html.py",
                  file=sys.stderr)
            return 1
        missing = missing_anchors(page)
        if missing:
            print(f"{TARGET.relative_to(ROOT)} has no anchor for: {', '.join(missing)}", file=sys.stderr)
            return 1
        print(f"{TARGET.relative_to(ROOT)} is up to date, with an anchor for every alert")
        return 0
    TARGET.write_text(page)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

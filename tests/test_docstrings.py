"""Docstrings and comments say what the code does and why, not where it came from.

The history of a rule (the brief section that asked for it, the numbered decision that settled
it, the issue and step that built it) lives in docs/decisions.md and the git log; a citation in
the code goes stale the day the brief or the issue is renumbered, and tells a reader nothing
the sentence around it should not say itself. Spec references (OCPP sections and requirement
ids, RFC numbers) are not history and pass.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("csms", "charge_point", "qr_extension", "ocpp_rpc", "config", "demo")
MODULES = ("qrcharge_cli.py",)

# The brief's numbered sections (1-7, with subsections 2.1-2.3 and 7.1-7.n).
_BRIEF_SECTION = r"(?<![\w.])[1-7](?:\.\d{1,2})?(?!\w|\.\d)"

HISTORY = {
    "a citation of the brief": re.compile(
        rf"\bbrief(?:'s)?\s+(?:§\s*|sections?\s+)?{_BRIEF_SECTION}|\bthe (?:design )?brief\b",
        re.IGNORECASE,
    ),
    "a decision number": re.compile(r"\bD\d{1,3}\b"),
    "an issue number or step": re.compile(r"\bissues?\s*#?\d+[a-z]?\b", re.IGNORECASE),
}

# A bare brief subsection in parentheses, such as "(7.8)" or "(7.9, 7.10)"; OCPP versions
# ("(1.6)", "(2.0.1)", "(OCPP 2.1)") and quantities ("(2.1 GWh)") are not sections.
_PARENS = re.compile(r"\(([^()]*)\)")
_BARE_SECTION = re.compile(r"(?<![\w.])(?:2\.[1-3]|7\.\d{1,2})(?!\w|\.\d)(?!\s*[A-Za-z%])")
_NOT_A_SECTION = re.compile(r"\b(?:ocpp|version|brief)\b", re.IGNORECASE)


def _python_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    files += [ROOT / name for name in MODULES]
    return files


def _prose(source: str) -> Iterator[tuple[int, str]]:
    """``(first line, text)`` of every comment and every docstring-like string statement."""
    tree = ast.parse(source)
    doc_starts = {
        (node.lineno, node.col_offset)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or (
            tok.type == tokenize.STRING and tok.start in doc_starts
        ):
            yield tok.start[0], tok.string


def _findings(name: str, source: str) -> Iterator[str]:
    for first_line, text in _prose(source):
        hits: list[tuple[int, str, str]] = [
            (m.start(), what, m.group(0))
            for what, pattern in HISTORY.items()
            for m in pattern.finditer(text)
        ]
        for group in _PARENS.finditer(text):
            if _NOT_A_SECTION.search(group.group(1)):
                continue
            for m in _BARE_SECTION.finditer(group.group(1)):
                hits.append((group.start(1) + m.start(), "a bare brief section", m.group(0)))
        for offset, what, found in sorted(hits):
            line = first_line + text.count("\n", 0, offset)
            yield f"{name}:{line}: {what}: {found!r}"


def test_the_patterns_catch_history_and_pass_spec_references() -> None:
    def flagged(text: str) -> bool:
        in_docstring = any(_findings("probe.py", f'"""{text}"""\n'))
        in_comment = any(_findings("probe.py", f"x = 1  # {text}\n"))
        assert in_docstring == in_comment, text
        return in_docstring

    for history in (
        "Orders (brief 6; issue 5, steps 2 and 5).",
        "Charged as a debt (brief 7.10).",
        "Held to the limits (7.8).",
        "Auto-capture and hold release (7.9, 7.10).",
        "See brief section 6.",
        "One connection for life (decision D13).",
        "Lanes per charger (D19).",
        "Drivers and billing (issue 5a).",
        "Read the brief for more.",
    ):
        assert flagged(history), history
    for spec in (
        "OCPP 1.6 section 4.2, 2.0.1 B01.FR.10.",
        "Attached to the named (1.6) or open (2.0.1) transaction.",
        "2.0.1 (4.2.3): without a readable id, answer with -1.",
        "Base64url without padding (RFC 7515 section 2).",
        "The register passes 2,147,483,647 Wh (2.1 GWh).",
        "Say what and why, briefly; the decision is the charger's.",
        "The token is issued once (OCPP 2.1).",
        "Step 2 of the pipeline on a header read unverified.",
    ):
        assert not flagged(spec), spec


def test_docstrings_and_comments_cite_no_history() -> None:
    findings = [
        found
        for path in _python_files()
        for found in _findings(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
    ]
    assert not findings, (
        "Docstrings and comments say what the code does and why; its history (brief sections, "
        "decision numbers, issue steps) belongs in docs/decisions.md:\n" + "\n".join(findings)
    )

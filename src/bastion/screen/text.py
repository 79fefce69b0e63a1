"""The shared pieces of screening, under one name for the modules that use them.

Each lives in its own module, whose docstring lists its rules:

- `findings`: `Severity`, `Finding`, `Action`, excerpts and span replacement;
- `invisible`: ANSI escapes, invisible Unicode, bare carriage returns and padding;
- `normalize`: look-alike folding (NFKC, confusables) and decoding of encoded blobs;
- `index`: a text indexed once (`TextIndex`);
- `injection`: the injection heuristics and their scoring;
- `secrets` and `links`: keys and tokens, and links that carry data out.
"""

from bastion.screen.findings import MARKER_HIDDEN, Action, Finding, Severity, escape, excerpt, replace_spans
from bastion.screen.index import TextIndex
from bastion.screen.injection import InjectionScan, injection_findings, injection_scan
from bastion.screen.invisible import collapse_padding, invisible_findings, padding_findings, strip_invisible

__all__ = [
    "MARKER_HIDDEN",
    "Action",
    "Finding",
    "InjectionScan",
    "Severity",
    "TextIndex",
    "collapse_padding",
    "escape",
    "excerpt",
    "injection_findings",
    "injection_scan",
    "invisible_findings",
    "padding_findings",
    "replace_spans",
    "strip_invisible",
]

"""Redaction for everything the suite writes: known secret values, and anything shaped like a
credential (bearer tokens, JWTs, session cookies, password or secret fields)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "****"
_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    (re.compile(r"((?:oauth2_proxy_kubeflow|authservice_session|_oauth2_proxy_csrf)[A-Za-z0-9_]*=)[^;\s\"']+"),
     r"\1" + MASK),
    (re.compile(r"(?i)((?:password|passwd|secret|token|client[-_]?key[-_]?data|accesskey|secretkey)"
                r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*\*)[^\s\"',};]+"), r"\1" + MASK),
    (re.compile(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}"), MASK),  # bcrypt hashes
)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

"""Control API principals: one secret token per supplier and one for the operator, kept as
STATE/credentials/<principal>.token (directory 0700, files 0600); who holds a token.

Issues, stores and recognises tokens; what each principal may do is control.py's. Tokens
never enter the event log.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from pathlib import Path

OPERATOR = "operator"
_SAFE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


def supplier(ident: str) -> str:
    """The principal of a supplier id."""
    return "supplier:" + ident


def supplier_of(principal: str | None) -> str | None:
    """The supplier id of a supplier principal; None for the operator or nobody."""
    if principal is not None and principal.startswith("supplier:"):
        return principal[len("supplier:") :]
    return None


def file_name(principal: str) -> str:
    """operator.token, supplier-<id>.token (an id with other characters: hex-encoded)."""
    ident = supplier_of(principal)
    if ident is None:
        return f"{principal}.token"
    safe = ident if _SAFE.match(ident) else "x" + ident.encode().hex()
    return f"supplier-{safe}.token"


def write_secret(path: Path, text: str) -> None:
    """`text` + newline as `path`, atomically, in a directory 0700, the file 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


class Credentials:
    """Tokens by principal: in STATE/credentials/ with a state dir, in memory without."""

    def __init__(self, root: Path | None):
        self.root = root
        self._tokens: dict[str, str] = {}

    def path(self, principal: str) -> Path | None:
        return self.root / file_name(principal) if self.root is not None else None

    def token(self, principal: str) -> str | None:
        """The principal's token (read from its file when there is one), None if none."""
        p = self.path(principal)
        if principal not in self._tokens and p is not None:
            try:
                self._tokens[principal] = p.read_text().strip()
            except OSError:
                return None
        return self._tokens.get(principal)

    def issue(self, principal: str) -> bool:
        """Make the principal a token unless it has one; True if one was made."""
        if self.token(principal):
            return False
        tok = secrets.token_urlsafe(32)
        p = self.path(principal)
        if p is not None:
            write_secret(p, tok)
        self._tokens[principal] = tok
        return True

    def who(self, token: str | None, principals: set[str]) -> str | None:
        """The principal (of `principals`) holding `token`; compared in constant time."""
        if not token:
            return None
        found = None
        for principal in sorted(principals):
            mine = self.token(principal)
            if mine and hmac.compare_digest(mine.encode(), token.encode()):
                found = principal
        return found

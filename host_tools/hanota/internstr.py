"""Make a module's long name-like string literals qstrs (the device build only).

mpy-cross keeps a string literal of more than 10 characters as a str object, and a
loaded module makes one 32-byte heap object of each (on the 64-bit unix port, ~40 bytes
with its table slot), even when the text sits in ROM. A literal whose text is already
interned when the parser meets it becomes a qstr instead: no object, and the same text
in every module is one shared name. Names met earlier in the file are interned, so this
pass writes the module's name-like literals (`"BAD_COMPRESSION"`, `"fragment_offset"`)
as names in an `if 0:` statement in place of the module docstring, which mpy-cross
drops anyway, and `if 0:` compiles to nothing. Line numbers do not change (the
statement takes the docstring's lines), so tracebacks still point at the source.

Only literals that are identifiers and not keywords qualify; a module without a
docstring is left as it is.
"""

from __future__ import annotations

import ast
import io
import keyword
import tokenize

_INTERN_MAX = 10  # mpy-cross interns string literals up to this length by itself


def intern_strings(src: bytes) -> bytes:
    """`src` with its docstring replaced by `if 0: NAME, ...` for its long name-like
    string literals; unchanged when it has none, no docstring, or does not tokenize."""
    try:
        toks = list(tokenize.tokenize(io.BytesIO(src).readline))
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        return src
    doc = _docstring(toks)
    if doc is None or b"__future__" in src:
        return src
    names: dict[str, None] = {}
    for tok in toks:
        if tok.type == tokenize.STRING and tok is not doc:
            text = _text(tok.string)
            if text is not None and len(text) > _INTERN_MAX:
                names.setdefault(text, None)
    if not names:
        return src
    lines = src.decode().splitlines(keepends=True)
    (r0, c0), (r1, c1) = doc.start, doc.end
    stmt = "if 0: " + ", ".join(names) + "\n#" * (r1 - r0)
    head, tail = lines[r0 - 1][:c0], lines[r1 - 1][c1:]
    lines[r0 - 1 : r1] = [head + stmt + tail]
    return "".join(lines).encode()


def _docstring(toks: list[tokenize.TokenInfo]) -> tokenize.TokenInfo | None:
    # the module docstring: the first statement, one string token alone on its lines
    skip = {tokenize.ENCODING, tokenize.NL, tokenize.COMMENT, tokenize.NEWLINE}
    body = [t for t in toks if t.type not in skip]
    if len(body) < 2 or body[0].type != tokenize.STRING or body[0].start[1] != 0:
        return None
    nxt = toks[toks.index(body[0]) + 1]
    return body[0] if nxt.type in (tokenize.NEWLINE, tokenize.ENDMARKER) else None


def _text(literal: str) -> str | None:
    # the value of a plain (not bytes, not f-string) literal when it is a usable name
    if literal[0] not in "'\"":
        return None
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return None
    if (
        isinstance(value, str)
        and value.isascii()
        and value.isidentifier()
        and not keyword.iskeyword(value)
    ):
        return value
    return None

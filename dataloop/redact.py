"""Keeping secrets out of what dataloop shows and saves: URL credentials, keys pasted as names."""

from __future__ import annotations

import re

_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, fit to show or save."""
    return _URL_CREDENTIALS.sub("***@", url)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_PREFIXES = ("sk_", "hf_", "ghp_", "gsk_", "AIza")


def looks_like_key(value: str) -> bool:
    """Whether an ``api_key_env`` value is a key pasted where a variable name belongs."""
    if not _ENV_NAME.fullmatch(value) or len(value) > 64:
        return True  # ``sk-...`` keys end here: a variable name has no ``-``
    # Variable names are short and UPPER_SNAKE by custom; keys are long tokens, with a
    # vendor's prefix or mixed case and digits.
    if len(value) < 20:
        return False
    mixed = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return value.startswith(_KEY_PREFIXES) or (mixed and any(c.isdigit() for c in value))

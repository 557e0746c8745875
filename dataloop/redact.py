"""Keeping secrets out of what dataloop shows and saves: URL credentials, keys pasted as names."""

from __future__ import annotations

import re

from dataloop.errors import ConfigError

_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")
REDACTED = "***@"
"""What stands for a URL's credentials once redacted."""


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, fit to show or save."""
    return _URL_CREDENTIALS.sub(REDACTED, url)


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


_TOKEN = re.compile(r"[A-Za-z0-9_\-]{20,}")
_VENDOR = re.compile(r"(sk-|sk_|hf_|ghp_|gho_|gsk_|xox[abp]-|AIza)[A-Za-z0-9_\-]{16,}")


def redact_keys(text: str) -> str:
    """``text`` with every token that looks like an API key (a vendor's prefix and a long tail,
    or 24+ letters and digits of mixed case without a separator) replaced by ``***``: for
    messages that echo a value the user typed (a key pasted as a model name or a URL)."""

    def hide(match: re.Match[str]) -> str:
        token = match[0]
        if _VENDOR.search(token):
            return "***"
        parts = re.split(r"[-_]", token)
        secret = any(
            len(p) >= 24
            and any(c.isupper() for c in p)
            and any(c.islower() for c in p)
            and any(c.isdigit() for c in p)
            for p in parts
        )
        return "***" if secret else token

    return _TOKEN.sub(hide, text)


def refuse_key(field: str, value: str | None) -> None:
    """ConfigError for a config value (a model name or folder) that looks like an API key:
    never looked up (a hub id would be sent to the hub), never echoed."""
    if value is not None and redact_keys(value) != value:
        raise ConfigError(
            f"config field '{field}': this looks like an API key, not a model name or folder; "
            "the value is not shown: give the key through teacher.api_key_env"
        )

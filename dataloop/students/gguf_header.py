"""What a GGUF file says about its tokenizer, read from its key-value header alone.

The ``gguf`` package's reader parses every array of the header into numpy parts, which takes
~60 s for Gemma 3's 262k-token vocabulary; this reader steps over arrays and keeps the scalar
and string values (llama.cpp's GGUF v2/v3 layout, little-endian), in well under a second.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from pydantic import BaseModel

# GGUF value types: the fixed-size ones by struct format; 8 is a string, 9 an array.
_SCALAR = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9


class GGUFTokenizerMetadata(BaseModel):
    """The tokenizer facts of a GGUF file (llama.cpp's ``tokenizer.ggml.*`` keys)."""

    architecture: str
    """``general.architecture``, e.g. ``gemma3``."""
    add_bos_token: bool | None
    """Whether a BOS token starts every sequence; None where the file does not say."""
    add_eos_token: bool | None
    """Whether an EOS token ends every sequence; None where the file does not say."""
    has_chat_template: bool
    """The file carries ``tokenizer.chat_template``."""


def read_header(path: Path) -> dict[str, object]:
    """The scalar and string values of the GGUF header at ``path``, by key (arrays left out)."""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version, _tensors, count = struct.unpack_from("<IQQ", data, 4)
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version} (only 2 and 3 are read)")
        offset = 24
        values: dict[str, object] = {}

        def string(at: int) -> tuple[str, int]:
            (length,) = struct.unpack_from("<Q", data, at)
            return data[at + 8 : at + 8 + length].decode(errors="replace"), at + 8 + length

        def skip(kind: int, at: int) -> int:
            if kind in _SCALAR:
                return at + struct.calcsize(_SCALAR[kind])
            if kind == _STRING:
                return at + 8 + struct.unpack_from("<Q", data, at)[0]
            item, length = struct.unpack_from("<IQ", data, at)
            at += 12
            if item in _SCALAR:
                return at + length * struct.calcsize(_SCALAR[item])
            for _ in range(length):
                at = skip(item, at)
            return at

        for _ in range(count):
            key, offset = string(offset)
            (kind,) = struct.unpack_from("<I", data, offset)
            offset += 4
            if kind in _SCALAR:
                values[key] = struct.unpack_from(_SCALAR[kind], data, offset)[0]
            elif kind == _STRING:
                values[key] = string(offset)[0]
            elif kind != _ARRAY:
                raise ValueError(f"{path}: key {key} has unknown GGUF type {kind}")
            offset = skip(kind, offset)
        return values


def read_gguf_metadata(path: Path) -> GGUFTokenizerMetadata:
    """The tokenizer metadata of the GGUF file at ``path``."""
    header = read_header(path)

    def flag(key: str) -> bool | None:
        value = header.get(f"tokenizer.ggml.{key}")
        return None if value is None else bool(value)

    return GGUFTokenizerMetadata(
        architecture=str(header["general.architecture"]),
        add_bos_token=flag("add_bos_token"),
        add_eos_token=flag("add_eos_token"),
        has_chat_template="tokenizer.chat_template" in header,
    )

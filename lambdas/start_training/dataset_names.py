"""Which dataset and version names can be carried through a run, and the label that carries
them where the raw name is not allowed.

A name travels raw in the S3 keys, the ledger, `InputDataUri` and the execution description,
and as a label in the `DatasetVersion` pipeline parameter, from where it reaches the model
package's CustomerMetadataProperties and the jobs' tags (pattern
`[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`, at most 256 characters), a processing job argument (at
most 256) and the evaluation report's S3 URI. No metric dimension carries a name.

Names (each of `<dataset>` and `<version>`)
    Any characters except `/`: letters, marks, digits, spaces, punctuation and symbols of any
    script. Refused: empty names, `.` and `..`, control characters (U+0000-U+001F,
    U+007F-U+009F), the line and paragraph separators U+2028/U+2029 (SageMaker's S3 URI and
    description patterns stop at line ends) and unpaired surrogates.

Label (`label()`, reversed by `unlabel()`)
    Letters (\\p{L}), digits (\\p{N}), spaces (\\p{Zs}) and `_ . : / + - @` stay as they are;
    every other character, `=` included, becomes `=XX` per UTF-8 byte (uppercase hex):
    `50% off` -> `50=25 off`, `a=b` -> `a=3Db`, `q(1)` -> `q=281=29`. Names of letters, digits
    and `_.:+-@` are their own label. Limits, counted in UTF-16 units as the APIs count:
    label of `<dataset>/<version>` at most 256, `InputDataUri` at most 1024.
"""

from __future__ import annotations

import re
import unicodedata

from trigger_outcomes import Rejection

MAX_LABEL_LENGTH = 256  # CustomerMetadataValue, TagValue, ContainerArgument
MAX_URI_LENGTH = 1024  # pipeline parameter values (String1024), S3Uri
REASON_INVALID_NAME = "invalid-name"
REASON_NAME_TOO_LONG = "name-too-long"

_KEPT_PUNCTUATION = frozenset("_.:/+-@")
_REFUSED = {
    "Cc": "a control character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "an unpaired surrogate",
}
_ESCAPED_RUN = re.compile(r"(?:=[0-9A-F]{2})+")
ALLOWED = (
    "letters, marks, digits, spaces, punctuation and symbols of any script; not '/', "
    "control characters (U+0000-U+001F, U+007F-U+009F), U+2028/U+2029 or unpaired surrogates"
)


def utf16_length(text: str) -> int:
    """Length as Java (and so the AWS APIs) counts it: characters beyond U+FFFF count 2."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _kept(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LN" or category == "Zs" or char in _KEPT_PUNCTUATION


def label(dataset_version: str) -> str:
    """The `DatasetVersion` label of `<dataset>/<version>` (escapes: module docstring)."""
    return "".join(
        char if _kept(char) else "".join(f"={byte:02X}" for byte in char.encode("utf-8"))
        for char in dataset_version
    )


def unlabel(text: str) -> str:
    """The name a label stands for; raises ValueError if `text` is not a label."""
    if any(not _kept(char) and char != "=" for char in text):
        raise ValueError(f"{text!r} is not a DatasetVersion label: it has unescaped characters")
    rest = _ESCAPED_RUN.sub("", text)
    if "=" in rest:
        raise ValueError(f"{text!r} is not a DatasetVersion label: '=' must start '=XX'")
    try:
        return _ESCAPED_RUN.sub(lambda run: bytes.fromhex(run[0].replace("=", "")).decode(), text)
    except UnicodeDecodeError as error:
        raise ValueError(f"{text!r} is not a DatasetVersion label: {error}") from error


def check_name(what: str, name: str, *, key: str | None = None) -> None:
    """Raise Rejection unless `name` (a dataset or version name, see module docstring) can be
    carried; `what` ("dataset" or "version") and `key` go into the message."""
    if name in ("", ".", ".."):
        raise Rejection(
            REASON_INVALID_NAME, f"{what} name {name!r} is not a name; use {ALLOWED}", key=key
        )
    for position, char in enumerate(name):
        refused = "'/'" if char == "/" else _REFUSED.get(unicodedata.category(char))
        if refused:
            raise Rejection(
                REASON_INVALID_NAME,
                f"{what} name {name!r} has U+{ord(char):04X} ({refused}) at position "
                f"{position}; names may use {ALLOWED}",
                key=key,
            )


def check_lengths(dataset_version: str, input_uri: str, *, key: str | None = None) -> None:
    """Raise Rejection if the label or the input URI of a version is too long to carry."""
    carried = label(dataset_version)
    if utf16_length(carried) > MAX_LABEL_LENGTH:
        raise Rejection(
            REASON_NAME_TOO_LONG,
            f"dataset version {dataset_version!r} is too long: its DatasetVersion label "
            f"{carried[:40]!r}... has {utf16_length(carried)} characters, at most "
            f"{MAX_LABEL_LENGTH} fit model package metadata and tags; use shorter names",
            key=key,
        )
    if utf16_length(input_uri) > MAX_URI_LENGTH:
        raise Rejection(
            REASON_NAME_TOO_LONG,
            f"input URI of dataset version {dataset_version!r} has {utf16_length(input_uri)} "
            f"characters, at most {MAX_URI_LENGTH} fit a pipeline parameter; use shorter names",
            key=key,
        )

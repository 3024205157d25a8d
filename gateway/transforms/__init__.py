"""Pure value transforms for legacy Thai government data (no I/O, stdlib only).

Typical use: compile each field's YAML transform list once at start-up with
compile_chain, then call the result per value; see chain.compile_chain for the
error contract.
"""

from .chain import (
    TRANSFORMS,
    Transform,
    TransformConfigError,
    chain_note,
    chain_types,
    compile_chain,
    legacy_value,
    split_spec,
)
from .citizen_id import check_digit, format_pid, is_valid_pid, mask_pid, normalise_pid
from .text import (
    DEFAULT_TITLES,
    NameParts,
    as_text,
    ascii_digits,
    clean_text,
    redecode_thai,
    split_thai_name,
)
from .thaidate import BE_OFFSET, Era, Order, PartialDate, be_int, parse_legacy_date

__all__ = [
    "BE_OFFSET",
    "DEFAULT_TITLES",
    "TRANSFORMS",
    "Era",
    "NameParts",
    "Order",
    "PartialDate",
    "Transform",
    "TransformConfigError",
    "as_text",
    "ascii_digits",
    "be_int",
    "chain_note",
    "chain_types",
    "check_digit",
    "clean_text",
    "compile_chain",
    "format_pid",
    "is_valid_pid",
    "legacy_value",
    "mask_pid",
    "normalise_pid",
    "parse_legacy_date",
    "redecode_thai",
    "split_spec",
    "split_thai_name",
]

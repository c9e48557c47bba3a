"""What a phone number on a shipping address may be: the characters a phone number has, and nothing a spreadsheet
could run.

Digits, spaces and `+ - ( )`, starting with a digit, `+` or `(`, with 5 to 20 digits. No letter can appear, so no
function, reference or DDE call can be written with them, and a carrier's import gets the number exactly as typed.
"""

from __future__ import annotations

import re

PHONE_NUMBER = re.compile(r"\+?[0-9(][0-9 ()-]*")
PHONE_DIGITS = range(5, 21)
MAX_PHONE_CHARS = 40


def is_phone_number(value: str) -> bool:
    """`value` is a phone number as a backer types one: `+81 3 1234 5678`, `(020) 7946-0000`."""
    return (
        len(value) <= MAX_PHONE_CHARS and PHONE_NUMBER.fullmatch(value) is not None and _digits(value) in PHONE_DIGITS
    )


def _digits(value: str) -> int:
    """How many digits a value the pattern matched has: it let through only ASCII digits and these five characters
    (five `str.replace` calls: a shipping list calls this once a package)."""
    return len(value.replace(" ", "").replace("(", "").replace(")", "").replace("-", "").replace("+", ""))

"""统一社会信用代码 (GB 32100-2015) check-digit validation.

The code is 18 characters from a 31-symbol alphabet (digits and capitals without
I, O, S, V, Z). Position 18 is a mod-31 check character over positions 1-17 with
weights 3^(i-1) mod 31. Because 31 is prime and every weight is non-zero, any
single-character substitution changes the weighted sum mod 31 and is detected.
"""

from __future__ import annotations

from functools import lru_cache
from operator import mul

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
_SYMBOLS = frozenset(CHARSET)
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
LENGTH = 18


def uscc_check_char(first17: str) -> str:
    """Return the check character for the first 17 characters (upper-cased)."""
    body = first17.upper()
    if len(body) != 17:
        raise ValueError(f"前17位长度应为17，实际为{len(body)}")
    if not _SYMBOLS.issuperset(body):
        pos, ch = next((i, c) for i, c in enumerate(body, start=1) if c not in _VALUE)
        raise ValueError(f"第{pos}位字符“{ch}”不合法")
    total = sum(map(mul, map(_VALUE.__getitem__, body), WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def make_uscc(first17: str) -> str:
    """Complete 17 characters with their check character (for tests and examples)."""
    body = first17.upper()
    return body + uscc_check_char(body)


def validate_uscc(s: str) -> str:
    """Return the upper-cased code, or raise ValueError with a Chinese message.

    Surrounding whitespace is tolerated (spreadsheet cells often carry it);
    inner whitespace is an illegal character.
    """
    if not isinstance(s, str):
        raise ValueError("统一社会信用代码必须是字符串")
    return _validated(s)


@lru_cache(maxsize=4096)
def _validated(s: str) -> str:
    # a form checks a code more than once (the cell, then the profile); errors are not cached
    raw = s.strip()
    code = raw.upper()
    if len(code) != LENGTH:
        raise ValueError(f"统一社会信用代码应为18位，实际为{len(code)}位")
    if not _SYMBOLS.issuperset(code):
        # Report the characters as typed, so the user can find them.
        bad = [(i, raw[i - 1]) for i, ch in enumerate(code, start=1) if ch not in _VALUE]
        listed = "；".join(f"第{i}位“{ch}”" for i, ch in bad)
        raise ValueError(
            f"统一社会信用代码含非法字符：{listed}（只允许数字和除 I、O、S、V、Z 以外的大写字母）"
        )
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise ValueError(f"统一社会信用代码校验码错误：第18位为 {code[17]}，应为 {expected}")
    return code

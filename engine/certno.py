"""Parsing of medical-device registration certificate and Class I filing numbers.

Registration (the format introduced by 局令第4号 (2014) and still used under 市场监管总局令第47号, in force 2021-10-01): ``×1械注×2 YYYY C NN SSSS``
  ×1 = approving authority (province short name for domestic Class II, 国 otherwise),
  ×2 = 准 (domestic) / 进 (imported) / 许 (HK, Macau, Taiwan), YYYY = year of first
  registration, C = class digit (2/3), NN = catalogue code (17 = 口腔科器械), SSSS = serial.
Class I filing: ``×1械备 YYYY SSSS 号`` with ×1 = 国 (imported) or province + city short name.

Anything else (legacy 国食药监械(准)字… numbers, typos) returns None: the profile accepts
it, but every criterion that needs the number's parts becomes unknown.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass
from typing import Literal

# Short names of the 31 provincial-level regions on the mainland that run a 药监局.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

_CJK = "\u4e00-\u9fff"
_REGISTRATION = re.compile(
    rf"^(?P<authority>[{_CJK}])械注(?P<approval>[准进许])"
    r"(?P<year>[0-9]{4})(?P<cls>[23])(?P<catalogue>[0-9]{2})(?P<serial>[0-9]{4})号?$"   # 号 as copied from documents
)
# City part: one or two characters (e.g. 川资, 浙温); none for 国.
_FILING = re.compile(
    rf"^(?P<authority>国|[{PROVINCES}][{_CJK}]{{1,2}})械备(?P<year>[0-9]{{4}})(?P<serial>[0-9]{{4}})号?$"
)

_FIRST_YEAR = 2000  # older numbers use other formats; a 19xx year here is a typo


@dataclass(frozen=True)
class ParsedCertNo:
    kind: Literal["registration", "filing"]
    authority: str
    approval: Literal["准", "进", "许"] | None
    year: int
    device_class: Literal["I", "II", "III"]
    catalogue_code: str | None
    serial: str

    @property
    def dental(self) -> bool | None:
        """Catalogue 17 = 口腔科器械; unknown for filings (no catalogue code)."""
        return None if self.catalogue_code is None else self.catalogue_code == "17"


@lru_cache(maxsize=65536)
def parse_certificate_no(s: str) -> ParsedCertNo | None:
    if not isinstance(s, str):
        return None
    text = s.strip()
    m = _REGISTRATION.match(text)
    if m:
        authority, approval = m["authority"], m["approval"]
        cls_digit = m["cls"]
        year = int(m["year"])
        if year < _FIRST_YEAR:
            return None
        if approval == "准":
            # Domestic: Class II by the province, Class III by 国家药监局.
            if authority == "国":
                if cls_digit != "3":
                    return None
            elif authority in PROVINCES:
                if cls_digit != "2":
                    return None
            else:
                return None
        elif authority != "国":
            # Imported and HK/Macau/Taiwan devices are approved by 国家药监局 only.
            return None
        return ParsedCertNo(
            kind="registration",
            authority=authority,
            approval=approval,  # type: ignore[arg-type]
            year=year,
            device_class="II" if cls_digit == "2" else "III",
            catalogue_code=m["catalogue"],
            serial=m["serial"],
        )
    m = _FILING.match(text)
    if m:
        year = int(m["year"])
        if year < _FIRST_YEAR:
            return None
        return ParsedCertNo(
            kind="filing",
            authority=m["authority"],
            approval=None,
            year=year,
            device_class="I",
            catalogue_code=None,
            serial=m["serial"],
        )
    return None

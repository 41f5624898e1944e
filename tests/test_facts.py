"""The fact catalogue agrees with the profile model it reads (shared/contract/profile.md)."""
from __future__ import annotations

import typing
from datetime import date

from engine.facts import CATALOGUE, LISTS
from engine.profile import DeviceRegistration, Profile, Violation

PY = {"bool": bool, "int": int, "number": float, "date": date, "string": str, "enum": str}


def _base(annotation) -> set[type]:
    """The concrete types a field annotation admits (Optional/Annotated/Literal unwrapped)."""
    out: set[type] = set()
    stack = [annotation]
    while stack:
        a = stack.pop()
        origin = typing.get_origin(a)
        if origin is typing.Literal:
            out |= {type(v) for v in typing.get_args(a)}
        elif origin is not None:
            stack += list(typing.get_args(a))
        elif isinstance(a, type):
            out.add(a)
    return out


def test_every_plain_enterprise_fact_is_a_profile_field_of_that_type():
    for path, d in CATALOGUE.items():
        if d.scope != "enterprise" or d.source or "." in path:
            continue
        assert path in Profile.model_fields, path
        admitted = _base(Profile.model_fields[path].annotation)
        assert PY[d.type.name] in admitted, (path, d.type.name, admitted)


def test_enum_domains_match_the_contract_literals():
    for path, d in CATALOGUE.items():
        if d.type.name == "enum" and d.scope == "enterprise" and not d.source:
            args = set()
            for a in [Profile.model_fields[path].annotation]:
                stack = [a]
                while stack:
                    x = stack.pop()
                    if typing.get_origin(x) is typing.Literal:
                        args |= set(typing.get_args(x))
                    else:
                        stack += list(typing.get_args(x))
            assert set(d.type.domain) == args, path


def test_list_item_fields_exist_on_the_item_models():
    assert set(LISTS["violations"]) <= set(Violation.model_fields)
    plain = {k for k, d in LISTS["device_registrations"].items() if d.source is None}
    assert plain - {"device_class"} <= set(DeviceRegistration.model_fields)

"""Profile snapshots stored packed (store.profiles): every profile reads back exactly as it was
stored, whatever dictionary it was packed with; the shipped fields' dictionary packs the
synthetic window's profiles to under a quarter of their JSON."""
from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from engine.registry import load_registry
from store import profiles, rulesets
from store.models import ProfileDictionary
from store_fixtures import db, make_profile, packer, rules_copy, store_url  # noqa: F401  (fixtures)

from profiles import profiles as profile_strategy

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(profile_strategy(), st.dictionaries(st.text(), JSON)))
def test_a_packed_profile_unpacks_to_the_same_text(data):
    zdict = profiles.dictionary_of(rulesets.current().registry)      # compiled once per process
    text = orjson.dumps(data)
    assert profiles.unpack(profiles.pack(text, profiles.key_of(zdict), zdict), zdict) == text


def test_the_fields_dictionary_packs_a_window_to_under_a_quarter():
    zdict = profiles.dictionary_of(rulesets.current().registry)
    key = profiles.key_of(zdict)
    texts = [orjson.dumps(make_profile(i)) for i in range(200)]
    packed = [profiles.pack(t, key, zdict) for t in texts]
    assert sum(map(len, packed)) < sum(map(len, texts)) / 4


def test_snapshots_packed_under_earlier_fields_read_back_after_the_fields_change(db, tmp_path):
    old = rulesets.current().registry
    rules = rules_copy(tmp_path, {"fields.yaml": [("example: 资阳示例口腔医疗器械有限公司", "example: 另一家示例企业有限公司")]})
    new = load_registry(rules / "fields.yaml")
    assert profiles.dictionary_of(new) != profiles.dictionary_of(old)
    a, b = orjson.dumps(make_profile(1)), orjson.dumps(make_profile(2))
    with db.session() as s:
        blob_a = packer(s, old)(a)
        blob_b = packer(s, new)(b)
    assert blob_a[1:9] != blob_b[1:9]           # each names its own dictionary
    profiles._known.clear()                     # as a fresh process: dictionaries come from the database
    with db.read_session() as s:
        assert s.scalar(select(ProfileDictionary.key).where(ProfileDictionary.key == blob_a[1:9])) is not None
        assert profiles.texts(s, [blob_a, blob_b]) == [a, b]
        assert profiles.load(s, blob_b) == make_profile(2)


def test_a_snapshot_whose_dictionary_is_missing_is_reported_by_its_key(db):
    with db.session() as s:
        blob = packer(s, rulesets.current().registry)(b'{"uscc":"x"}')
        s.execute(delete(ProfileDictionary))
    profiles._known.clear()
    with db.read_session() as s, pytest.raises(LookupError, match=blob[1:9].hex()):
        profiles.load(s, blob)

"""Label names, label maps and class lists."""
from __future__ import annotations

import pytest

from ser_studio.model.corpora.labels import parse_label_map
from ser_studio.model.corpora.labels import canonical_classes, canonical_label, resolve_label
from ser_studio.model.corpora.record import CorpusError


def test_parse_label_map():
    assert parse_label_map("calm=neutral,exc=happy") == {"calm": "neutral", "exc": "happy"}
    assert parse_label_map(" Calm = Neutral , ") == {"calm": "neutral"}
    assert parse_label_map(["calm=neutral", "fru=angry"]) == {"calm": "neutral", "fru": "angry"}
    assert parse_label_map(None) == {} and parse_label_map("") == {}


@pytest.mark.parametrize("text", ["calm", "calm=", "=neutral", "a=b=c"])
def test_parse_label_map_rejects_malformed_items(text):
    with pytest.raises(CorpusError, match="not of the form name=name"):
        parse_label_map(text)


def test_canonical_label():
    assert canonical_label("neu") == "neutral"
    assert canonical_label(" Exc ") == "excited"
    assert canonical_label("Anger") == "angry"
    assert canonical_label("bored") == "bored"
    assert canonical_label("xxx") is None


def test_resolve_label_applies_user_map_before_default():
    default = {"exc": "happy"}
    assert resolve_label("exc", {}, default) == "happy"
    assert resolve_label("exc", {"excited": "excited"}, default) == "excited"
    assert resolve_label("fru", {"frustrated": "ang"}, default) == "angry"
    assert resolve_label("calm", {"calm": "neutral"}) == "neutral"
    assert resolve_label("xxx", {}, default) is None
    assert resolve_label("xxx", {"xxx": "other"}, default) == "other"


def test_canonical_classes():
    assert canonical_classes(["ang", "Happy", "angry"]) == ["angry", "happy"]
    with pytest.raises(CorpusError, match="'xxx' cannot be a class"):
        canonical_classes(["xxx"])


def test_classes_are_parsed_space_or_comma_separated():
    from ser_studio.model.corpora.labels import parse_classes

    assert parse_classes(None) is None and parse_classes([]) is None
    assert parse_classes(["angry", "happy"]) == ["angry", "happy"]
    assert parse_classes(["angry,happy", " sad"]) == ["angry", "happy", "sad"]
    assert parse_classes(["a, b", "c"]) == ["a", "b", "c"]
    assert parse_classes([","]) is None

"""gitxact.util.jsontext: the same text and values as the json module, without importing re.

State files' checksums are computed over jsontext's output, so "the same" means byte
for byte, on generated documents as well as on the corner cases named here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitxact.util import jsontext

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text()
)
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5), max_leaves=25
)


@settings(max_examples=60, deadline=None)
@given(documents, st.booleans(), st.booleans(), st.booleans())
def test_dumps_is_json_dumps_byte_for_byte(value: object, sort_keys: bool, compact: bool, ascii_only: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    expected = json.dumps(value, sort_keys=sort_keys, separators=separators, ensure_ascii=ascii_only)
    assert jsontext.dumps(value, sort_keys=sort_keys, compact=compact, ensure_ascii=ascii_only) == expected


@settings(max_examples=60, deadline=None)
@given(documents, st.sampled_from(["", " ", "\n\t ", "\r\n"]))
def test_loads_is_json_loads(value: object, space: str) -> None:
    text = space + json.dumps(value) + space
    assert repr(jsontext.loads(text)) == repr(json.loads(text))
    assert repr(jsontext.loads(text.encode())) == repr(json.loads(text.encode()))


def test_constants_and_floats_as_json_reads_them() -> None:
    assert jsontext.loads("[NaN, Infinity, -Infinity, 1e400, -0.0]")[1:] == [math.inf, -math.inf, math.inf, -0.0]
    assert math.isnan(jsontext.loads("NaN"))
    with pytest.raises(ValueError, match="Out of range"):
        jsontext.dumps({"x": math.nan}, allow_nan=False)


@pytest.mark.parametrize("text", ["", "  ", "x", "{} x", '{"a":}', "[1,]", '"\\x"', "\ufeff{}"])
def test_bad_text_is_a_value_error_like_json(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        jsontext.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert type(ours.value) is type(theirs.value)


def test_bytes_json_would_detect_are_read_as_json_reads_them() -> None:
    for raw in ['{"a": "é"}'.encode("utf-16"), b'\xef\xbb\xbf{"a": 1}', '["x"]'.encode("utf-32-le")]:
        assert jsontext.loads(raw) == json.loads(raw)
    with pytest.raises(ValueError):
        jsontext.loads(b'{"a": "\xff"}')


def test_unserializable_values_are_refused_or_defaulted() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsontext.dumps({"a": object()})
    assert jsontext.dumps({"a": {1}}, default=sorted) == '{"a":[1]}'


def test_good_text_imports_neither_json_nor_re() -> None:
    code = (
        "import sys; from gitxact.util import jsontext;"
        "v = jsontext.loads(jsontext.dumps({'a': [1, 2.5, None, 'x']}, sort_keys=True));"
        "assert v == {'a': [1, 2.5, None, 'x']};"
        "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

import json

import pytest

from evidence.canonical import CanonicalJSONError, canonical_json, canonical_sha256, parse_canonical


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # RFC 8785 §3.2.2-3.2.3: members sorted by UTF-16 code units, no whitespace, ES6 numbers
        ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'),
        ({"n": 1.0}, b'{"n":1}'),
        ({"n": 1e21}, b'{"n":1e+21}'),
        ({"n": 0.000001}, b'{"n":0.000001}'),
        ({"n": 1e-7}, b'{"n":1e-7}'),
        ({"s": "é\n"}, '{"s":"é\\n"}'.encode()),
        ({"\u20ac": 1, "\r": 2, "1": 3}, '{"\\r":2,"1":3,"€":1}'.encode()),
    ],
)
def test_canonical_form(value, expected):
    assert canonical_json(value) == expected


def test_equal_data_gives_equal_bytes_whatever_the_order():
    a = {"device": "cam-1", "files": {"k.png": "ab", "c.mp4": "cd"}, "score": 0.5}
    b = json.loads(json.dumps({"score": 0.5, "files": {"c.mp4": "cd", "k.png": "ab"}, "device": "cam-1"}))
    assert canonical_json(a) == canonical_json(b)
    assert canonical_sha256(a) == canonical_sha256(b)


@pytest.mark.parametrize("value", [{"x": float("nan")}, {"x": float("inf")}, {"x": object()}, {1: "int key"}])
def test_non_json_values_are_refused(value):
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)


def test_parse_refuses_json_that_was_re_encoded():
    data = canonical_json({"a": 1, "b": [1, 2]})
    assert parse_canonical(data) == {"a": 1, "b": [1, 2]}
    with pytest.raises(CanonicalJSONError, match="not in canonical form"):
        parse_canonical(b'{"b": [1, 2], "a": 1}')
    with pytest.raises(CanonicalJSONError, match="not JSON"):
        parse_canonical(b"{oops")

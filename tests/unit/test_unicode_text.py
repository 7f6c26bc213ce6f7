"""Finding text that cannot be encoded as UTF-8 anywhere in a parsed JSON value."""
import json

from crossmodal.media.text import first_invalid_string, invalid_unicode


def test_valid_text_of_every_script_passes():
    for text in ("a cup of coffee", "кот", "猫", "قطة", "🐈‍⬛", "zero\u200bwidth", ""):
        assert invalid_unicode(text) is None


def test_a_lone_surrogate_is_named_with_its_position():
    for surrogate in ("\ud800", "\udbff", "\udc00", "\udfff"):
        reason = invalid_unicode(f"ab{surrogate}c")
        assert reason is not None and "lone surrogate" in reason and "position 2" in reason
        reason.encode("utf-8")  # the reason itself can be sent in a response


def test_the_first_invalid_string_anywhere_in_a_json_body_is_found_with_its_path():
    body = json.loads('{"text": "ok", "plus": [{"text": "fine"}, {"text": "bad \\ud800"}], "limit": 3}')
    assert first_invalid_string(body).startswith("body.plus[1].text: not valid Unicode text")
    assert first_invalid_string(json.loads('{"\\udc00": 1}')).startswith("body: not valid Unicode")
    assert first_invalid_string(json.loads('{"data": ["a", "b", "\\udfff"]}')).startswith("body.data[2]:")
    assert first_invalid_string({"text": "a", "n": [1, 2.5, None, True]}) is None

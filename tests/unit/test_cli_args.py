"""app.py refuses impossible scale settings before starting anything, with the flag named in the message."""
import pytest

from app import parse_args


@pytest.mark.parametrize("flag", ["--shards", "--replicas", "--ef-search"])
def test_scale_settings_below_one_are_refused(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["-t", "query-restful", flag, "0"])
    assert exit_info.value.code == 2
    assert f"{flag} must be at least 1" in capsys.readouterr().err


def test_ef_search_reaches_the_flow_settings(monkeypatch):
    from app import settings_for

    monkeypatch.delenv("CROSSMODAL_EF_SEARCH", raising=False)
    assert settings_for(parse_args(["-t", "query-restful"])).ef_search == 64
    args = parse_args(["-t", "query-restful", "--index-type", "hnsw", "--ef-search", "300"])
    assert settings_for(args).ef_search == 300


def test_query_parts_become_one_composed_search_body(tmp_path):
    """`-t query`: the first --text is the query, the other texts and the photos are `plus` parts, `--not` and
    `--not-image` are `minus` parts; the body is what `POST /search` validates."""
    import base64

    from serving.http.api_models import SearchRequest
    from serving.jobs.client import composed_query

    photo = tmp_path / "dog.jpg"
    photo.write_bytes(b"\xff\xd8\xff not really a photo")
    args = parse_args(["-t", "query", "--text", "a beach", "--image", str(photo), "--not", "people",
                       "--not-image", str(photo), "--mode", "semantic", "--limit", "4"])
    body = composed_query(args.text, args.image, args.not_text, args.not_image, args.limit, args.mode)
    encoded = base64.b64encode(photo.read_bytes()).decode()
    assert body == {"text": "a beach", "limit": 4, "mode": "semantic", "plus": [{"image": encoded}],
                    "minus": [{"text": "people"}, {"image": encoded}]}
    SearchRequest.model_validate(body)
    only_photo = composed_query([], [photo])
    assert only_photo == {"image": encoded, "limit": 10, "mode": "hybrid"}


def test_query_filter_sort_and_page_flags_become_search_fields():
    from app import query_options
    from serving.http.api_models import SearchRequest
    from serving.jobs.client import composed_query

    args = parse_args(["-t", "query", "--text", "the beach", "--folder", "2024/summer", "--taken-after", "2024-07-01",
                       "--taken-before", "2024-08-31T20:00", "--no-has-location", "--camera", "canon",
                       "--place", "Lisbon", "--sort", "taken", "--offset", "20", "--limit", "5", "--all-duplicates"])
    body = composed_query(args.text, args.image, limit=args.limit, mode=args.mode, options=query_options(args))
    assert body == {"text": "the beach", "limit": 5, "mode": "hybrid", "folder": "2024/summer",
                    "taken_after": "2024-07-01", "taken_before": "2024-08-31T20:00", "has_location": False,
                    "camera": "canon", "place": "Lisbon", "sort": "taken", "offset": 20, "collapse_duplicates": False}
    SearchRequest.model_validate(body)
    plain = parse_args(["-t", "query", "--text", "the beach"])
    assert composed_query(plain.text, [], options=query_options(plain)) == {"text": "the beach", "limit": 10,
                                                                          "mode": "hybrid"}
    assert parse_args(["-t", "query", "--text", "x", "--has-location"]).has_location is True


def test_query_needs_a_text_or_a_photo(capsys):
    with pytest.raises(SystemExit):
        parse_args(["-t", "query", "--not", "people"])
    assert "needs a --text or an --image" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["-t", "watch"], "-t watch needs -d folder"),
    (["-t", "watch", "-d", "folder", "--data-dir", "x", "--scan-interval", "0"], "--scan-interval must be positive"),
])
def test_watch_needs_a_folder_and_a_positive_scan_interval(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_a_library_refuses_flags_that_do_not_apply_and_a_captioned_folder_cannot_be_watched(tmp_path, capsys):
    from PIL import Image

    from app import main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (8, 8)).save(photos / "a.jpg")
    workspace = str(tmp_path / "workspace")
    for flags, message in ((["-n", "1"], "-n does not apply"), (["--reindex"], "--reindex does not apply")):
        assert main(["-t", "index", "-d", "folder", "--data-dir", str(photos), "--workspace", workspace,
                     *flags]) == 2
        assert message in capsys.readouterr().err
    (photos / "captions.json").write_text('{"a.jpg": ["a black square"]}')
    assert main(["-t", "watch", "-d", "folder", "--data-dir", str(photos), "--workspace", workspace]) == 2
    assert "-t watch syncs a photo folder without captions file" in capsys.readouterr().err


@pytest.mark.parametrize(("place", "message"), [
    ("", "--place: is empty"), ("x" * 10_000, "--place: is longer than 200 characters"),
    ("\udcff", "--place: is not valid Unicode text"), ("?!", "--place: '?!' has no letter or digit"),
])
def test_a_bad_place_is_refused_before_any_flow_starts(place, message):
    from app import query_flag_problem

    assert query_flag_problem(parse_args(["-t", "query", "--text", "x", "--place", place])).startswith(message)

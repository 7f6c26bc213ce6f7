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

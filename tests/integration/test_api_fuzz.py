"""Property-based tests: thousands of generated requests; every answer is a 2xx, or a 4xx in the error shape.

Never a 5xx, never a hang, and the server still answers a normal query afterwards.
"""
import base64
import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
image_values = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=2000).map(lambda data: base64.b64encode(data).decode()),
    st.binary(max_size=2000).map(lambda data: "data:image/png;base64," + base64.b64encode(data).decode()),
    st.sampled_from(["data:", "data:image/png;base64,", "=", "file:///etc/passwd", "http://127.0.0.1:1/x.jpg"]),
)
search_bodies = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(st.text(max_size=300), json_values),
        "image": st.one_of(image_values, json_values),
        "limit": st.one_of(st.integers(-5, 200), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
                           st.none()),
        "modality": st.one_of(st.sampled_from(["image", "text", "audio", ""]), json_values),
        "data": st.one_of(st.lists(st.one_of(st.text(max_size=50), image_values), max_size=3), json_values),
        "parameters": st.one_of(st.dictionaries(st.sampled_from(["top_k", "limit"]), json_values), json_values),
        "top_k": json_values,
        "mode": json_values,
    },
)


def assert_well_formed(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["status"] == response.status_code and isinstance(error["message"], str) and error["message"]


@pytest.mark.slow
@FUZZ
@given(body=search_bodies)
def test_generated_search_bodies(client, body):
    assert_well_formed(client.post("/search", json=body))


@pytest.mark.slow
@FUZZ
@given(body=search_bodies)
def test_generated_jinabox_bodies(client, body):
    assert_well_formed(client.post("/api/search", json=body))


@pytest.mark.slow
@FUZZ
@given(raw=st.binary(max_size=500), content_type=st.sampled_from(
    ["application/json", "text/plain", "multipart/form-data", "multipart/form-data; boundary=x", ""]))
def test_generated_raw_bodies(client, raw, content_type):
    assert_well_formed(client.post("/search", content=raw, headers={"content-type": content_type}))


@pytest.mark.slow
@FUZZ
# "." and ".." are dot segments: the client resolves them away before sending (`/images/..` becomes `/`), so they
# never reach the id lookup; traversal with encoded or embedded dots (`..%2f`, `a/../b`) is still generated.
@given(name=st.text(min_size=1, max_size=60).filter(lambda name: name not in (".", "..")),
       route=st.sampled_from(["/images/", "/documents/"]),
       size=st.one_of(st.none(), st.integers(-10, 5000).map(str), st.text(max_size=5)))
def test_generated_paths_never_read_outside_the_index(client, name, route, size):
    params = {} if size is None else {"size": size}
    response = client.get(route + quote(name, safe=""), params=params, follow_redirects=True)
    assert response.status_code in (400, 404, 422), (name, response.status_code)
    assert_well_formed(response)


def test_server_still_answers_normally_after_the_fuzzing(client):
    matches = client.post("/search", json={"text": "a cup of coffee"}).json()["matches"]
    assert matches[0]["tags"]["pair_id"] == "demo/coffee.png"
    assert json.loads(client.get("/health").text)["status"] == "ok"

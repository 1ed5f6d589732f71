"""The playground (issue 15): the page and its API through Starlette's test client, the
same calls the page's script makes; numbers from the lecture notes' example."""

import warnings

import pytest

with warnings.catch_warnings():  # Starlette suggests httpx2, which the registry lacks
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cnncalc.web.app import LIMITS, create_app


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def test_the_page_is_one_self_contained_file(client):
    res = client.get("/")
    assert res.status_code == 200 and "<textarea" in res.text
    assert "http://" not in res.text and "https://" not in res.text  # no CDN: works offline


def test_a_spec_gives_its_table_figure_and_numbers(client):
    res = client.post("/api/analyse", json={"spec": "input 443x592x3 | conv 5x5x6 valid "
                                            "stride 1 | maxpool 2", "explain": True})
    data = res.json()
    assert res.status_code == 200 and data["ok"]
    assert "439x588x6" in data["table"] and data["output"] == "219x294x6"
    assert data["params"] == 456 and data["svg"].startswith("<svg")
    assert "ceil" not in data["explain"] and "5 x 5 x 3 x 6 = 450" in data["explain"]


def test_a_mistake_comes_back_with_its_line_and_column(client):
    res = client.post("/api/analyse", json={"spec": "input 8x8x3\nconvv 3x3x4"})
    err = res.json()["error"]
    assert res.status_code == 400 and (err["line"], err["column"]) == (2, 1)
    assert "did you mean 'conv'" in err["message"]


def test_what_if_input_and_fit(client):
    res = client.post("/api/analyse", json={"spec": "input 32x32x3 | conv 3x3x8 same",
                                            "input": "64x64x3", "memory": "1MiB"}).json()
    assert res["output"] == "64x64x8" and res["fit"]["inference"] > 0


def test_limits_hold(client):
    big = "input 8x8x3\n" + "relu\n" * (LIMITS.max_bytes // 5)
    res = client.post("/api/analyse", json={"spec": big})
    assert res.status_code == 413 and "at most 65,536" in res.json()["error"]["message"]
    res = client.post("/api/analyse", json={"spec": "input 8x8x3 | repeat 9999 { relu }"})
    assert res.status_code == 400 and "5,000" in res.json()["error"]["text"]
    res = client.post("/api/analyse", content=b"not json", headers=JSON)
    assert res.status_code == 400 and "expected JSON" in res.json()["error"]["message"]


JSON = {"content-type": "application/json"}
ABUSE = [  # (what was sent, status, words of the answer): each once a 500 or a frozen server
    ({"spec": "input 7x7x3 | adaptiveavgpool 1000000000000"}, 400, "at most 100,000"),
    ({"spec": "input 8x8x3", "memory": "1e10000000GiB"}, 400, "memory 1e10000000GiB"),
    ({"spec": "input 8x8x3", "memory": "1e100GiB"}, 400, "larger than any memory"),
    ({"spec": "input 8x8x3 | conv 3x3x(" + "1+" * 960 + "1)"}, 400, "at most 256 operators"),
    ({"spec": "input 8x8x3 | conv 3x3x(1" + "0" * 400 + "/7)"}, 400, "too large"),
    ({"spec": "input 8x8x3 | conv 3x3x" + "9" * 1500}, 400, "too large"),
    ({"spec": "input 8x8x3 | repeat 4000 { upsample 1000000000 }"}, 400, "passes 10^18"),
    ({"spec": "input 8x8x3", "input": ["x"]}, 400, "'input' should be text"),
    ({"spec": "input 8x8x3", "input": "3x8x8"}, 400, "input 3x8x8: did you mean 8x8x3?"),
    ({"spec": 5}, 400, "'spec' should be text"),
]


@pytest.mark.parametrize("body, status, said", ABUSE, ids=[
    "adaptive-pool", "memory-digits", "memory-huge", "long-sum", "huge-fraction",
    "long-number", "size-overflow", "input-type", "channels-first", "spec-type"])
def test_bad_requests_get_a_4xx_with_the_message_the_cli_gives(client, body, status, said):
    res = client.post("/api/analyse", json=body)
    assert res.status_code == status and said in res.json()["error"]["text"]


def test_bodies_are_refused_by_type_size_and_depth(client):
    assert client.post("/api/analyse", content=b'{"spec": "input 8x8x3"}',
                       headers={"content-type": "text/plain"}).status_code == 415
    nested = b"[" * 20_000 + b"]" * 20_000  # within the size limit, past json's recursion
    res = client.post("/api/analyse", content=nested, headers=JSON)
    assert res.status_code == 400 and "expected JSON" in res.json()["error"]["text"]
    huge = b'{"spec": "input 8x8x3", "n": ' + b"9" * 5000 + b"}"  # past int()'s 4,300 digits
    assert client.post("/api/analyse", content=huge, headers=JSON).status_code == 400

    def chunks():  # sent chunked, with no length: refused while reading, not after
        for _ in range(10_000):
            yield b"x" * 10_000
    res = client.post("/api/analyse", content=chunks(), headers=JSON)
    assert res.status_code == 413


def test_a_computation_past_its_time_limit_is_stopped_and_the_server_goes_on():
    import asyncio
    import time

    from cnncalc.web.work import Pool, TooSlow

    async def go():
        pool = Pool(workers=2, limit=3)
        try:
            await pool.run(time.sleep, 0)  # the workers start (a spawn takes a moment)
            pool.limit = 0.5
            start = time.monotonic()
            with pytest.raises(TooSlow):
                await pool.run(time.sleep, 30)
            stopped = time.monotonic() - start
            pool.limit = 3
            assert await pool.run(abs, -4) == 4  # a fresh worker answers
            return stopped
        finally:
            pool.close()
    assert asyncio.run(go()) < 2


def test_zoo_and_export(client):
    names = client.get("/api/zoo").json()
    assert "resnet50" in names and "vgg16" in names
    assert client.get("/api/zoo/vgg16").text.startswith("network vgg16")
    assert client.get("/api/zoo/..%2Fpyproject").status_code == 404
    code = client.post("/api/export", json={"spec": "input 8x8x3 | conv 3x3x4 relu"}).text
    assert "nn.Conv2d(3, 4, 3)" in code and "class Network(nn.Module)" in code


def test_kinds_colour_the_editor(client):
    k = client.get("/api/kinds").json()
    assert {"conv", "maxpool", "relu", "add"} <= set(k["kinds"]) and "stride" in k["options"]

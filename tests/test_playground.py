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
    assert res.status_code == 400 and "at most" in res.json()["error"]["message"]
    res = client.post("/api/analyse", json={"spec": "input 8x8x3 | repeat 9999 { relu }"})
    assert res.status_code == 400 and "5,000" in res.json()["error"]["text"]
    res = client.post("/api/analyse", content=b"not json")
    assert res.status_code == 400 and "expected JSON" in res.json()["error"]["message"]


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

"""tools/make_synthetic.py: the small preset's structure, determinism, and the committed copy."""

from __future__ import annotations

import collections
import json
import os
import sys

import pytest

TOOLS = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, TOOLS)
import make_synthetic  # noqa: E402
import ps_eval  # noqa: E402

COMMITTED = os.path.join(TOOLS, "..", "Tests", "Fixtures", "synthetic_small")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("syn") / "small")
    make_synthetic.generate("small", 0, out)
    load = lambda f: json.load(open(os.path.join(out, f)))  # noqa: E731
    return out, load("train.json"), load("test.json"), load("identities.json")


def test_structure(small):
    out, train, test, ident = small
    for m in (train, test):
        assert m["protocol"] == "cuhk-sysu"
        for im in m["images"]:
            assert os.path.isfile(os.path.join(out, im["path"]))
            assert im["camera"] in (1, 2, 3)
            for p in im["persons"]:
                x1, y1, x2, y2 = p["box"]
                assert 0 <= x1 < x2 <= im["width"] and 0 <= y1 < y2 <= im["height"]
    assert len(test["images"]) == 24 and len(train["images"]) == 16
    persons = [(im, p) for im in test["images"] for p in im["persons"]]
    heights = [(p["box"][3] - p["box"][1]) / im["height"] for im, p in persons]
    assert min(heights) >= 0.09 and max(heights) <= 0.61
    assert any(p["pid"] == -1 for _, p in persons)  # passers-by
    assert len({im["camera"] for im in test["images"]}) == 3


def test_splits_and_queries(small):
    out, train, test, ident = small
    train_ids = {p["pid"] for im in train["images"] for p in im["persons"]} - {-1}
    test_ids = {p["pid"] for im in test["images"] for p in im["persons"]} - {-1}
    assert train_ids and test_ids and not train_ids & test_ids
    assert train["queries"] == []
    where = collections.defaultdict(list)
    for im in test["images"]:
        for p in im["persons"]:
            if p["pid"] >= 0:
                where[p["pid"]].append(im)
    assert len(test["queries"]) == len(test_ids) == 10
    for q in test["queries"]:
        holders = [im["name"] for im in where[q["pid"]] if im["name"] != q["image"]]
        assert holders and q["gallery"][:len(holders)] == sorted(holders, key=q["gallery"].index)
        assert set(q["gallery"][:len(holders)]) == set(holders)  # positives first, all of them
        assert q["image"] not in q["gallery"] and len(q["gallery"]) == 12 == len(set(q["gallery"]))
        assert len({im["camera"] for im in where[q["pid"]]}) >= 2
        qimg = next(im for im in test["images"] if im["name"] == q["image"])
        assert {"box": q["box"], "pid": q["pid"]} in qimg["persons"]


def test_no_single_attribute_separates_identities(small):
    _, _, test, ident = small
    pids = sorted({p["pid"] for im in test["images"] for p in im["persons"]} - {-1})
    keys = [make_synthetic.visible_key(ident["identities"][str(p)]) for p in pids]
    for j in range(len(make_synthetic.CATEGORICAL)):
        counts = collections.Counter(k[j] for k in keys)
        assert all(c >= 2 for v, c in counts.items() if v != "-"), make_synthetic.CATEGORICAL[j]
    for i in range(len(keys)):
        for k in range(i + 1, len(keys)):
            assert sum(a != b for a, b in zip(keys[i], keys[k])) >= make_synthetic.MIN_DIFFERENT


def test_perfect_detections_score_one(small):
    _, _, test, _ = small
    emb = lambda pid: [1.0 if i == pid % 97 else 0.0 for i in range(97)] if pid >= 0 else [0.0] * 96 + [1.0]  # noqa
    dets = {"images": {im["name"]: {"boxes": [p["box"] for p in im["persons"]], "scores": [1.0] * len(im["persons"]),
                                    "embeddings": [emb(p["pid"]) for p in im["persons"]]} for im in test["images"]},
            "queries": [{"embedding": emb(q["pid"])} for q in test["queries"]]}
    r = ps_eval.evaluate(test, dets)
    assert r == pytest.approx({k: 1.0 for k in ps_eval.KEYS})


def test_deterministic_and_committed_copy_up_to_date(small, tmp_path):
    out, train, test, ident = small
    again = str(tmp_path / "again")
    make_synthetic.generate("small", 0, again)
    for f in ("train.json", "test.json", "identities.json"):
        assert json.load(open(os.path.join(again, f))) == json.load(open(os.path.join(out, f)))
        assert json.load(open(os.path.join(COMMITTED, f))) == json.load(open(os.path.join(out, f))), \
            f"Tests/Fixtures/synthetic_small/{f} is stale: rerun tools/make_synthetic.py --preset small --seed 0"
    with open(os.path.join(out, "images", "s00020.png"), "rb") as a, \
            open(os.path.join(again, "images", "s00020.png"), "rb") as b:
        assert a.read() == b.read()


def test_colour_baseline_on_committed_small_set():
    import synthetic_baseline

    manifest = os.path.join(COMMITTED, "test.json")
    d = synthetic_baseline.make_detections(manifest, jitter=0.1, drop=0.1, fp=0.5)
    m = json.load(open(manifest))
    assert set(d["images"]) == {im["name"] for im in m["images"]} and len(d["queries"]) == len(m["queries"])
    assert all(len(v["embeddings"][0]) == 128 for v in d["images"].values() if v["boxes"])
    r = ps_eval.evaluate(m, d)
    assert all(0.0 <= r[k] <= 1.0 for k in ps_eval.KEYS)
    assert 0.5 < r["det_recall"] < 1.0 and r["mAP"] > 0.1

"""Converters on the official-layout mini datasets in Tests/Fixtures/datasets (tools/make_dataset_layout_fixtures.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.io import loadmat

TOOLS = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, TOOLS)
import convert_cuhk_sysu  # noqa: E402
import convert_prw  # noqa: E402
import ps_eval  # noqa: E402

FIX = os.path.join(TOOLS, "..", "Tests", "Fixtures", "datasets")
CUHK = os.path.join(FIX, "cuhk_sysu_mini")
PRW = os.path.join(FIX, "prw_mini")


def by_name(m):
    return {im["name"]: im for im in m["images"]}


def persons(im):
    return sorted((tuple(p["box"]), p["pid"]) for p in im["persons"])


# --------------------------------------------------------------------------- the fixture layout itself


def test_fixture_layout_indexes_like_community_readers():
    """The .mat files answer the indexing the public loaders use (struct/cell nesting, field order)."""
    ann = os.path.join(CUHK, "annotation")
    imgs = loadmat(os.path.join(ann, "Images.mat"))["Img"].squeeze()
    name, _, boxes = imgs[0]
    assert str(name[0]) == "s1.jpg"
    assert np.asarray([b[0] for b in boxes[0]]).reshape(-1, 4).tolist() == [[5, 5, 12, 30], [50, 20, 10, 25]]
    pool = loadmat(os.path.join(ann, "pool.mat"))["pool"].squeeze()
    assert [str(a[0]) for a in pool] == ["s5.jpg", "s6.jpg", "s7.jpg", "s8.jpg", "s9.jpg", "s10.jpg"]
    protoc = loadmat(os.path.join(ann, "test/train_test/TestG50.mat"))["TestG50"].squeeze()
    assert str(protoc["Query"][0]["imname"][0, 0][0]) == "s5.jpg"
    assert protoc["Query"][0]["idlocate"][0, 0][0].tolist() == [4, 10, 12, 30]
    assert str(protoc[0]["Query"][0, 0][0][0]) == "s5.jpg"
    gallery = [(str(n[0]), b.size) for n, b, _ in protoc["Gallery"][0].squeeze()]
    assert gallery == [("s6.jpg", 4), ("s9.jpg", 4), ("s7.jpg", 0), ("s8.jpg", 0)]
    train = loadmat(os.path.join(ann, "test/train_test/Train.mat"))["Train"].squeeze()
    scenes = train[0][0, 0][2].squeeze()
    assert [str(s[0][0]) for s in scenes] == ["s1.jpg", "s2.jpg", "s3.jpg"]
    person = loadmat(os.path.join(ann, "Person.mat"))["Person"][0]
    assert person[0][0][0] == "p101" and int(person[0][1][0][0]) == 3
    anno = loadmat(os.path.join(PRW, "annotations", "c1s1_000151.jpg.mat"))
    assert anno["box_new"].shape == (3, 5)
    assert "anno_file" in loadmat(os.path.join(PRW, "annotations", "c2s1_000101.jpg.mat"))
    frames = loadmat(os.path.join(PRW, "frame_test.mat"))["img_index_test"]
    assert [f[0][0] + ".jpg" for f in frames] == convert_prw.frame_list(PRW, "test")
    assert loadmat(os.path.join(PRW, "ID_test.mat"))["ID_test2"].squeeze().tolist() == [3, 7, 9]
    with open(os.path.join(PRW, "query_info.txt"), "rb") as f:
        assert f.readline().endswith(b"\r\n")


# --------------------------------------------------------------------------- CUHK-SYSU


def test_cuhk_test_split_gallery_50():
    m = convert_cuhk_sysu.convert(CUHK, "test", 50)
    assert m["protocol"] == "cuhk-sysu"
    assert [im["name"] for im in m["images"]] == ["s5.jpg", "s6.jpg", "s7.jpg", "s8.jpg", "s9.jpg", "s10.jpg"]
    ims = by_name(m)
    # xywh -> xyxy, pids from the idnames, unlabeled -1
    assert persons(ims["s5.jpg"]) == [((4, 10, 16, 40), 201), ((40, 30, 52, 54), -1)]
    assert persons(ims["s6.jpg"]) == [((8, 20, 20, 50), 202), ((30, 8, 44, 40), 201)]
    assert persons(ims["s7.jpg"]) == [((5, 5, 15, 25), 203), ((44, 12, 60, 52), 202)]
    assert persons(ims["s9.jpg"]) == [((10, 10, 21, 41), -1), ((60, 20, 70, 45), 201)]
    assert sum(len(im["persons"]) for im in m["images"]) == 11
    for im in m["images"]:
        assert im["path"] == "Image/SSM/" + im["name"]
        assert (im["width"], im["height"]) == (80, 60)
        assert im["camera"] is None
    assert m["queries"] == [
        {"image": "s5.jpg", "box": [4, 10, 16, 40], "pid": 201, "gallery": ["s6.jpg", "s9.jpg", "s7.jpg", "s8.jpg"]},
        {"image": "s6.jpg", "box": [8, 20, 20, 50], "pid": 202, "gallery": ["s7.jpg", "s10.jpg", "s5.jpg", "s9.jpg"]},
        {"image": "s7.jpg", "box": [5, 5, 15, 25], "pid": 203, "gallery": ["s8.jpg", "s5.jpg", "s9.jpg", "s10.jpg"]},
    ]


def test_cuhk_gallery_size_picks_protocol_file():
    m = convert_cuhk_sysu.convert(CUHK, "test", 100)
    assert [len(q["gallery"]) for q in m["queries"]] == [5, 5, 5]
    assert m["queries"][0]["gallery"] == ["s6.jpg", "s9.jpg", "s7.jpg", "s8.jpg", "s10.jpg"]


def test_cuhk_subsets():
    occ = convert_cuhk_sysu.convert(CUHK, "test", subset="occlusion")
    assert occ["queries"] == [{"image": "s7.jpg", "box": [5, 5, 15, 25], "pid": 203,
                               "gallery": ["s8.jpg", "s5.jpg", "s6.jpg"]}]
    res = convert_cuhk_sysu.convert(CUHK, "test", subset="low_resolution")
    assert [q["pid"] for q in res["queries"]] == [202]


def test_cuhk_train_split():
    m = convert_cuhk_sysu.convert(CUHK, "train")
    assert [im["name"] for im in m["images"]] == ["s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg"]
    assert m["queries"] == []
    ims = by_name(m)
    assert persons(ims["s1.jpg"]) == [((5, 5, 17, 35), 101), ((50, 20, 60, 45), -1)]
    assert persons(ims["s2.jpg"]) == [((10, 12, 22, 40), 102), ((40, 10, 54, 45), 101)]
    # s3's zero-width box is dropped (w > 0 and h > 0, as the community reader)
    assert persons(ims["s3.jpg"]) == [((20, 20, 30, 50), 101)]
    train_ids = {p["pid"] for im in m["images"] for p in im["persons"]} - {-1}
    test_ids = {q["pid"] for q in convert_cuhk_sysu.convert(CUHK, "test", 50)["queries"]}
    assert train_ids == {101, 102} and not train_ids & test_ids


# --------------------------------------------------------------------------- PRW


def test_prw_test_split():
    m = convert_prw.convert(PRW, "test")
    assert m["protocol"] == "prw"
    names = [im["name"] for im in m["images"]]
    assert names == ["c1s1_000151.jpg", "c1s1_000176.jpg", "c2s1_000101.jpg", "c3s2_000226.jpg", "c6s1_000026.jpg"]
    ims = by_name(m)
    assert [ims[n]["camera"] for n in names] == [1, 1, 2, 3, 6]
    assert (ims["c1s1_000151.jpg"]["width"], ims["c1s1_000151.jpg"]["height"]) == (96, 54)
    assert (ims["c6s1_000026.jpg"]["width"], ims["c6s1_000026.jpg"]["height"]) == (72, 58)
    assert ims["c3s2_000226.jpg"]["path"] == "frames/c3s2_000226.jpg"
    # [pid, x, y, w, h] -> [x1, y1, x2, y2]; -2 -> -1
    assert persons(ims["c1s1_000151.jpg"]) == [((5, 5, 15, 35), 3), ((40, 10, 52, 45), 7), ((60, 5, 70, 25), -1)]
    # negative x clipped to 0 before adding w (SeqNet): x=-2,w=12 -> [0, 12]
    assert persons(ims["c1s1_000176.jpg"]) == [((0, 10, 12, 40), -1), ((8, 6, 18, 36), 3)]
    # 'anno_file' and 'anno_previous' keys
    assert persons(ims["c2s1_000101.jpg"]) == [((30, 10, 41, 42), 3), ((50, 5, 62, 41), 7)]
    assert persons(ims["c6s1_000026.jpg"]) == [((0, 10, 15, 40), 9), ((20, 20, 30, 40), -1)]
    # fractional coordinates: x2 = int(10.5 + 14.2) = 24, y2 = int(12.7 + 30.9) = 43
    assert persons(ims["c3s2_000226.jpg"]) == [((10, 12, 24, 43), 7)]
    # queries: no gallery key (every other frame), boxes x,y,x+w,y+h -> int -> clip at 0
    assert m["queries"] == [
        {"image": "c1s1_000151.jpg", "box": [5, 5, 15, 35], "pid": 3},
        {"image": "c2s1_000101.jpg", "box": [50, 5, 62, 41], "pid": 7},
        {"image": "c3s2_000226.jpg", "box": [10, 12, 24, 43], "pid": 7},
        {"image": "c6s1_000026.jpg", "box": [0, 10, 12, 40], "pid": 9},
    ]


def test_prw_train_split():
    m = convert_prw.convert(PRW, "train")
    assert [(im["name"], im["camera"]) for im in m["images"]] == [("c1s1_000026.jpg", 1), ("c2s1_000051.jpg", 2)]
    assert m["queries"] == []
    assert persons(by_name(m)["c2s1_000051.jpg"]) == [((20, 5, 30, 35), 1), ((40, 5, 52, 35), 2)]


def test_prw_camera_parse_and_default_sizes(tmp_path):
    assert convert_prw.camera_of("c1s1_000151.jpg") == 1
    assert convert_prw.camera_of("c6s4_002110.jpg") == 6
    # without frame files the PRW frame sizes are used
    import shutil
    root = tmp_path / "prw"
    shutil.copytree(PRW, root, ignore=shutil.ignore_patterns("frames"))
    ims = by_name(convert_prw.convert(str(root), "test"))
    assert (ims["c1s1_000151.jpg"]["width"], ims["c1s1_000151.jpg"]["height"]) == (1920, 1080)
    assert (ims["c6s1_000026.jpg"]["width"], ims["c6s1_000026.jpg"]["height"]) == (720, 576)


# --------------------------------------------------------------------------- CLI and scorer on converted manifests


def test_cli_and_scorer_on_converted_manifests(tmp_path):
    out = tmp_path / "cuhk.json"
    subprocess.run([sys.executable, os.path.join(TOOLS, "convert_cuhk_sysu.py"), CUHK, "-o", str(out),
                    "--gallery-size", "50"], check=True, capture_output=True)
    m = json.loads(out.read_text())
    assert len(m["queries"]) == 3
    # perfect detections (GT boxes, identity embeddings) score 1 everywhere
    dim = 8
    emb = {pid: np.eye(dim)[i % dim].tolist() for i, pid in enumerate([201, 202, 203, -1])}
    dets = {"images": {im["name"]: {"boxes": [p["box"] for p in im["persons"]], "scores": [0.9] * len(im["persons"]),
                                    "embeddings": [emb[p["pid"]] for p in im["persons"]]} for im in m["images"]},
            "queries": [{"embedding": emb[q["pid"]]} for q in m["queries"]]}
    r = ps_eval.evaluate(m, dets)
    assert r == pytest.approx({"mAP": 1, "top1": 1, "top5": 1, "top10": 1, "det_ap": 1, "det_recall": 1})
    out = tmp_path / "prw.json"
    subprocess.run([sys.executable, os.path.join(TOOLS, "convert_prw.py"), PRW, "-o", str(out)], check=True,
                   capture_output=True)
    assert len(json.loads(out.read_text())["queries"]) == 4

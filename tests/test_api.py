"""The Python API (api.py, docs/api.md): the README's tour runs as written, the examples run, your
own image folder goes from training to a simulation through the CLI and through the API, `import
mstdeploy` stays light, and bad input raises UserError with the CLI's message."""
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import mstdeploy
from conftest import mst_here
from mstdeploy.models import checkpoint
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _folder(root: pathlib.Path, size: int = 12) -> pathlib.Path:
    """Three classes of grey digits (0, 1, 7) as PNG files: train/<class>/ and test/<class>/."""
    from PIL import Image
    from sklearn.datasets import load_digits
    d = load_digits()
    names = {0: "zero", 1: "one", 7: "seven"}
    for split, part in (("train", slice(0, 1200)), ("test", slice(1200, 1797))):
        for i, (img, y) in enumerate(zip(d.images[part], d.target[part])):
            if y in names:
                p = root / split / names[y]
                p.mkdir(parents=True, exist_ok=True)
                Image.fromarray((img * 16).clip(0, 255).astype(np.uint8), "L").resize((size, size)).save(p / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("folder"))


def test_import_is_light():
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mstdeploy"], capture_output=True, text=True,
                       cwd="/")
    assert r.returncode == 0, r.stderr
    modules = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert not {m for m in modules if m.split(".")[0] in ("lava", "matplotlib", "torch")}, "heavy import"
    assert callable(mstdeploy.export) and callable(mstdeploy.simulate)


def test_without_lava_all_but_lava_works():
    """pyproject's promise: without Lava, models, export and the simulator work; SAFormer (lava-dl
    neurons) says what to install."""
    code = """
import sys; sys.modules['lava'] = None                 # as if Lava were not installed
import mstdeploy
from mstdeploy.errors import UserError
from mstdeploy.models.config import preset
from mstdeploy.models.registry import build_model
import torch
g = mstdeploy.export(build_model(preset('mst-tiny')).eval())
print(mstdeploy.simulate(g, torch.rand(2, 3, 16, 16), 2).logits.shape)
try:
    build_model(preset('saformer-tiny'))
except UserError as e:
    print('refused:', e)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    assert "refused: SAFormer's neurons are lava-dl's" in r.stdout and "make install" in r.stdout


def test_readme_python_tour_runs(tmp_path):
    """The README's ten-line tour, as a newcomer pastes it, on a checkpoint in the demo's place."""
    text = (ROOT / "README.md").read_text()
    tour = re.search(r"<!-- python tour -->\n```python\n(.*?)```", text, re.S).group(1)
    assert len(tour.strip().splitlines()) <= 14
    demo = tmp_path / "runs" / "demo"
    demo.mkdir(parents=True)
    torch.manual_seed(0)
    checkpoint.save(demo / "mst-tiny.pt", build_model(preset("mst-tiny", in_chans=1)), {"dataset": "digits"})
    r = subprocess.run([sys.executable, "-c", tour], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "parity" in r.stdout and "uJ" in r.stdout, r.stdout


def test_examples_run(tmp_path, folder):
    sys.path.insert(0, str(ROOT / "tests"))
    from official_mst import CIFAR, random_state_dict
    torch.save({"model": random_state_dict(CIFAR)}, tmp_path / "official.pth")
    runs = [("official_to_loihi.py", str(tmp_path / "official.pth"), "--images", "2", "--steps", "2"),
            ("snntorch_network.py", "--out", str(tmp_path / "sn.nir")),
            ("your_image_folder.py", str(folder), "--epochs", "2", "--steps", "4", "--out", str(tmp_path / "e"))]
    for script, *args in runs:
        r = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, (script, r.stderr[-3000:])
        if script == "official_to_loihi.py":
            assert "PASS" in r.stdout
        if script == "snntorch_network.py":
            assert "equal per sample: True" in r.stdout and "Lava (float): 0 of" in r.stdout
        if script == "your_image_folder.py":
            assert "ANN:" in r.stdout and (tmp_path / "e" / "energy.json").exists()


def test_your_image_folder_through_the_cli_and_the_api(tmp_path, folder, capsys):
    ck, g = tmp_path / "f.pt", tmp_path / "f.nir"
    code, out, err = mst_here(capsys, "train", "--model", "vgg-tiny", "--dataset", "folder", "--data", folder,
                              "--img-size", 12, "--epochs", 2, "--batch-size", 16, "--out", ck, "--no-progress")
    assert code == 0, err
    assert checkpoint.load(ck)[1]["meta"]["classes"] == ["one", "seven", "zero"]
    code, out, err = mst_here(capsys, "eval", ck, "--data", folder)
    assert code == 0 and "folder test (181 images)" in out, out + err
    assert mst_here(capsys, "export", ck, "-o", g)[0] == 0
    code, out, err = mst_here(capsys, "simulate", g, "--dataset", "folder", "--data", folder, "-T", 8, "-n", 40,
                              "--no-progress", "--json", tmp_path / "s.json")
    report = json.loads((tmp_path / "s.json").read_text())
    assert code == 0 and report["classes"] == ["one", "seven", "zero"] and report["images"] == 40, err
    model, figures = mstdeploy.train("vgg-tiny", "folder", data=folder, img_size=12, epochs=2, batch_size=16)
    assert model.config.num_classes == 3 and model.config.in_chans == 1
    assert mstdeploy.evaluate(model, "folder", data=folder) == pytest.approx(figures["accuracy"])
    run = mstdeploy.simulate(mstdeploy.export(model), "folder", 8, data=folder, n=40)
    assert run.logits.shape == (8, 40, 3) and set(run.accuracy) == set(range(1, 9))
    bad = tmp_path / "bad"
    (bad / "train" / "a").mkdir(parents=True)
    code, _, err = mst_here(capsys, "train", "--dataset", "folder", "--data", bad, "--no-progress", "--out",
                            tmp_path / "x.pt")
    assert code == 2 and "no images found" in err and len(err.strip().splitlines()) == 1


def test_inputs_of_every_kind_and_errors(tmp_path):
    torch.manual_seed(0)
    model = build_model(preset("vgg-tiny", in_chans=1, img_size=8)).eval()
    graph = mstdeploy.export(model)
    x = torch.rand(5, 1, 8, 8)
    a = mstdeploy.simulate(graph, x, 4, labels=np.arange(5))
    b = mstdeploy.simulate(graph, x.numpy()[None].repeat(4, 0), labels=torch.arange(5))   # frames: T from them
    assert torch.equal(a.logits, b.logits) and a.accuracy is not None
    assert mstdeploy.simulate(graph, x, 4).accuracy is None                                 # no labels
    mstdeploy.write(graph, tmp_path / "g.nir")
    c = mstdeploy.simulate(tmp_path / "g.nir", torch.utils.data.TensorDataset(x, torch.arange(5)), 4)
    assert torch.equal(a.logits, c.logits)
    for bad, words in [(lambda: mstdeploy.simulate(graph, np.zeros((2, 3))), "must be (samples, 1, 8, 8)"),
                       (lambda: mstdeploy.simulate(graph, x, 4, labels=[0, 1, 2, 3, 99]), "labels must lie in 0..9"),
                       (lambda: mstdeploy.read(tmp_path / "missing.nir"), "not found"),
                       (lambda: mstdeploy.resources(graph, "loihi9"), "profile must be one of")]:
        with pytest.raises(mstdeploy.UserError, match=re.escape(words)):
            bad()
    assert mstdeploy.resources(graph)["cores"] >= 1

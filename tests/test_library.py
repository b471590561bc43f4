"""The model library refuses altered, unsafe or malformed files with one line naming the file, lists
the good models around a broken one, writes reproducible weights, and honours the umask."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
import torch
import yaml
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.catalog import CatalogEntry, write_user_entry
from workbench.methods.idm import IDMLatentSpatial
from workbench.engine.library import (ModelLibraryError, load_card, load_model, model_path, read_library,
                                      save_model)
from workbench.core.paths import atomic_write


def tiny_model(seed: int = 0) -> IDMLatentSpatial:
    torch.manual_seed(seed)
    return IDMLatentSpatial({"steer": 3}, input_size=32, width=8, embed_dim=16)


def card_of(model: IDMLatentSpatial) -> dict:
    """The fields a trainer's card holds that the library checks."""
    return {"architecture": "IDMLatentSpatial", "model": model.config, "config": {"name": "joint_v1"},
            "training": {"steps": 3}, "metrics": {}, "seed": 0, "heads": {"steer": {"classes": ["L", "N", "R"]}},
            "main_head": "steer"}


def saved(model_id: str, seed: int = 0) -> IDMLatentSpatial:
    model = tiny_model(seed)
    save_model(model_id, model, card_of(model))
    return model


def edit_card(model_id: str, change) -> None:
    path = model_path(model_id) / "card.yaml"
    card = yaml.safe_load(path.read_text())
    change(card)
    path.write_text(yaml.safe_dump(card))


class Unsafe:
    """An object torch.load(weights_only=True) must refuse to unpickle."""


# --- weights -----------------------------------------------------------------------------------


def test_same_weights_same_bytes_and_digest():
    saved("a"), saved("b")
    a, b = ((model_path(m) / "weights.pt").read_bytes() for m in ("a", "b"))
    assert a == b and load_card("a")["weights_sha256"] == load_card("b")["weights_sha256"]
    assert load_card("a")["weights_sha256"] == hashlib.sha256(a).hexdigest()


def test_changed_weights_fail_their_digest():
    saved("a")
    other = tiny_model(seed=1)  # valid weights of the same architecture, but not the ones the card names
    torch.save(other.state_dict(), model_path("a") / "weights.pt")
    with pytest.raises(ModelLibraryError, match=r"weights\.pt: its sha256 is not the weights_sha256 of the card"):
        load_model("a", "cpu")


@pytest.mark.parametrize("content, message", [
    ("pickle", "refused: it holds pickled objects other than tensors"),
    ("truncated", "not a torch tensor file"),
    ("foreign", "do not fit the IDMLatentSpatial"),
])
def test_unsafe_or_broken_weights_are_one_line_errors(content, message):
    saved("a")
    path = model_path("a") / "weights.pt"
    if content == "pickle":
        torch.save({"x": Unsafe()}, path)
    elif content == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        torch.save({"w": torch.zeros(2)}, path)
    edit_card("a", lambda card: card.update(weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest()))
    with pytest.raises(ModelLibraryError, match=message) as info:
        load_model("a", "cpu")
    text = str(info.value)
    assert str(path) in text and "\n" not in text and "weights_only" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained torch traceback


# --- cards -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper, message", [
    (lambda c: c.pop("model"), "missing field 'model'"),
    (lambda c: c.update(config=5), "field 'config' should be a dict, not int"),
    (lambda c: c.update(training={"steps": "many"}), "training.steps should be an int"),
    (lambda c: c.update(architecture="Evil"), "unknown architecture 'Evil'"),
    (lambda c: c.update(model_id="other"), "model_id 'other' is not its folder's name"),
    (lambda c: c.update(main_head=["steer"]), "field 'main_head' should be a str"),
])
def test_tampered_cards_name_the_file(tamper, message):
    saved("a")
    edit_card("a", tamper)
    with pytest.raises(ModelLibraryError, match=message) as info:
        load_card("a")
    assert str(model_path("a") / "card.yaml") in str(info.value)


@pytest.mark.parametrize("text", ["- just\n- a list\n", "", "key: [unclosed\n"])
def test_cards_that_are_not_mappings_or_yaml(text):
    saved("a")
    (model_path("a") / "card.yaml").write_text(text)
    with pytest.raises(ModelLibraryError, match="card.yaml: not a"):
        load_card("a")


def test_binary_card():
    saved("a")
    (model_path("a") / "card.yaml").write_bytes(bytes(range(256)))
    with pytest.raises(ModelLibraryError, match="card.yaml: not a readable YAML card"):
        load_card("a")


def test_models_listing_keeps_good_models_and_warns_about_a_broken_one():
    saved("good"), saved("broken")
    edit_card("broken", lambda c: c.pop("config"))
    cards, broken = read_library()
    assert list(cards) == ["good"] and len(broken) == 1 and "broken" in broken[0] and "'config'" in broken[0]

    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("good  [joint_v1]") and "broken" not in result.stdout
    warning = result.stderr.strip()
    assert warning.startswith("warning: skipped model 'broken'") and "\n" not in warning
    assert str(model_path("broken") / "card.yaml") in warning


def test_dashboard_library_page_lists_good_models_and_warns_about_a_broken_one():
    from workbench.app import sources
    from workbench.app.library import library_page

    saved("good"), saved("broken")
    edit_card("broken", lambda c: c.update(training=[]))
    table = sources.models_table()
    assert table["model"].tolist() == ["good"] and "'broken'" in table.attrs["skipped"][0]
    alerts = [p.object for p in library_page().objects if getattr(p, "alert_type", None) == "warning"]
    assert len(alerts) == 1 and "field 'training' should be a dict" in alerts[0]


def test_dashboard_library_page_plots_the_selected_models_curves():
    from workbench.app import library
    from workbench.engine.curves import CURVES, CurveWriter

    saved("plain"), saved("curved")
    writer = CurveWriter(model_path("curved") / CURVES)
    for step in (1, 2, 3, 4):
        writer.log(step, {"loss": 1.0 / step}, "train")
        writer.log(step, {"pairs_per_s": 100.0}, "throughput")
    writer.log(4, {"steer": 0.7, "val_loss": 0.9}, "val")
    writer.close()

    panels = dict(library.curve_panels(library.sources.model_curves("curved")))
    assert list(panels) == ["training loss", "validation metrics"]
    assert panels["training loss"].value.tolist() == [1.0, 0.5, pytest.approx(1 / 3), 0.25]
    assert sorted(panels["validation metrics"].tag) == ["val/steer", "val/val_loss"]
    shown = library._card("curved")
    assert [p.name for p in shown.objects] == ["model-curves", "model-card"]
    assert len(shown.objects[0].objects) == 2  # one figure per panel
    assert "No training curves" in library._card("plain").objects[0].object  # a model trained before curves


# --- permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        written = [atomic_write(tmp_path / "plain.txt", lambda tmp: open(tmp, "w").write("x"))]
        saved("a")
        written += [model_path("a") / "card.yaml", model_path("a") / "weights.pt"]
        entry = CatalogEntry.from_dict({"id": "mine", "source": {"type": "import", "format": "video_csv",
                                                                  "path": "x"}, "labels": [{"name": "steer", "kind": "binary"}]})
        written.append(write_user_entry(entry))
    finally:
        os.umask(previous)
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in written} == \
           {path.name: oct(mode) for path in written}

"""Importers: each native format round-trips from a generated fixture; each failure is a clear ValueError."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest

from fixtures_formats import (
    ATARI_ROWS,
    ATARI_TRIAL,
    VPT_ACTIONS,
    atari_head_trial,
    csgo_file,
    csgo_vector,
    minari_episode,
    minari_file,
    square_centre,
    square_frames,
    truncate,
    video_csv_recording,
    vpt_action,
    vpt_recording,
    write_mp4,
)
from workbench.data.episode import resize_frames
from workbench.data.importers import FORMATS, get_importer
from workbench.data.schema import STEER_CLASSES, LabelSchema
from workbench.data.store import StoreWriter, open_store
from workbench.data.video import read_video, video_frame_count

U = -1  # unlabeled code
L, N, R = 0, 1, 2  # steer codes


def read_all(fmt, path, **params):
    return list(get_importer(fmt).read(path, **params))


def is_red(rgb, tol=40) -> bool:
    """Pure red after lossy coding: a BGR/RGB swap would show it blue."""
    r, g, b = (int(v) for v in rgb)
    return r > 255 - tol and g < tol and b < tol


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_has_the_importer_interface(fmt):
    mod = get_importer(fmt)
    assert isinstance(mod.SCHEMA, LabelSchema) and mod.FRAME_RATE > 0
    assert mod.SCHEMA["steer"].classes == STEER_CLASSES
    assert callable(mod.read) and callable(mod.label_schema)


# --- video ---------------------------------------------------------------------------------------


def test_read_video_returns_rgb_frames_and_subsamples(tmp_path):
    mp4 = write_mp4(tmp_path / "v.mp4", square_frames(10, 48, 64))
    frames = read_video(mp4)
    assert frames.shape == (10, 48, 64, 3) and frames.dtype == np.uint8
    assert video_frame_count(mp4) == 10
    assert all(is_red(square_centre(frames, t)) for t in range(10))
    assert not np.array_equal(frames[0], frames[1])  # the square moves
    sub = read_video(mp4, frame_step=3, max_frames=3)
    assert sub.shape[0] == 3
    np.testing.assert_array_equal(sub[1], frames[3])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_unreadable_video_is_a_value_error_naming_the_file(tmp_path, damage):
    mp4 = write_mp4(tmp_path / "bad.mp4", square_frames(10, 48, 64))
    if damage == "truncated":
        truncate(mp4)
    elif damage == "garbage":
        mp4.write_bytes(b"definitely not an mp4 " * 50)
    else:
        mp4.unlink()
    with pytest.raises(ValueError, match="bad.mp4"):
        read_video(mp4)


# --- Atari-HEAD ----------------------------------------------------------------------------------


def test_atari_head_frames_labels_and_episodes(tmp_path):
    tar, frames = atari_head_trial(tmp_path / "ms_pacman")
    episodes = read_all("atari_head", tar)
    # the null episode_id row (4th) stays with episode 0
    assert [len(e.frames) for e in episodes] == [4, 4]
    assert [e.episode for e in episodes] == [0, 1]
    assert {e.game for e in episodes} == {"ms_pacman"}
    got = np.concatenate([e.frames for e in episodes])
    assert got.shape == (8, 210, 160, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, frames)  # PNG is lossless, and RGB order is kept
    assert tuple(got[0, 14, 10]) == (255, 0, 0)

    lab = {k: np.concatenate([e.labels[k] for e in episodes]) for k in episodes[0].labels}
    actions = get_importer("atari_head").ACTIONS
    names = [actions[c] if c >= 0 else None for c in lab["ale_action"]]
    assert names == ["NOOP", "RIGHT", "LEFT", None, "LEFTFIRE", "UPRIGHT", "DOWNLEFT", "FIRE"]
    assert lab["steer"].tolist() == [N, R, L, U, L, R, L, N]
    assert lab["vertical"].tolist() == [N, N, N, U, N, 0, 2, N]  # UP=0, DOWN=2
    assert lab["fire"].tolist() == [0, 0, 0, U, 1, 0, 0, 1]
    np.testing.assert_array_equal(lab["score"], [0, 0, 10, np.nan, 0, 0, 0, 20])
    np.testing.assert_array_equal(lab["duration_ms"], [np.nan, 51, 48, np.nan, 60, 45, 44, 40])
    np.testing.assert_allclose(lab["gaze_x"], [np.nan, 20, 5.5, np.nan, 3, np.nan, 100, np.nan])
    np.testing.assert_allclose(lab["gaze_y"], [np.nan, 30, 6.5, np.nan, 4, np.nan, 200, np.nan])
    for e in episodes:  # every label is valid for the schema
        for name, values in e.labels.items():
            get_importer("atari_head").SCHEMA[name].encode(values, e.source)


def test_atari_head_folder_reads_every_trial_and_game_param_overrides(tmp_path):
    atari_head_trial(tmp_path / "enduro", trial="101_RZ_1_Aug-24-11-44-38")
    atari_head_trial(tmp_path / "enduro", trial="102_RZ_2_Aug-24-11-50-00")
    episodes = read_all("atari_head", tmp_path / "enduro", game="Enduro")
    assert [e.episode for e in episodes] == [0, 1, 2, 3]
    assert {e.game for e in episodes} == {"Enduro"}
    assert episodes[0].source.endswith("101_RZ_1_Aug-24-11-44-38.tar.bz2")
    assert episodes[2].source.endswith("102_RZ_2_Aug-24-11-50-00.tar.bz2")


def test_atari_head_row_without_image_is_an_error(tmp_path):
    tar, _ = atari_head_trial(tmp_path / "g", skip_png=6)
    with pytest.raises(ValueError, match=rf"{tar.name}.*RZ_3592991_6.png missing from the archive"):
        read_all("atari_head", tar)


def test_atari_head_corrupt_image_is_an_error(tmp_path):
    tar, _ = atari_head_trial(tmp_path / "g", corrupt_png=3)
    with pytest.raises(ValueError, match=rf"{tar.name}: image {ATARI_TRIAL}/RZ_3592991_3.png cannot be decoded"):
        read_all("atari_head", tar)


def test_atari_head_image_without_row_is_an_error(tmp_path):
    tar, _ = atari_head_trial(tmp_path / "g", extra_png=True)
    with pytest.raises(ValueError, match=rf"{tar.name}: 1 images have no row.*RZ_3592991_999.png"):
        read_all("atari_head", tar)


@pytest.mark.parametrize("damage", ["half", "footer", "garbage"])
def test_atari_head_truncated_or_corrupt_archive_is_an_error(tmp_path, damage):
    tar, _ = atari_head_trial(tmp_path / "g")
    if damage == "half":
        truncate(tar)
    elif damage == "footer":  # every image intact, only bz2's end-of-stream marker cut off
        tar.write_bytes(tar.read_bytes()[:-4])
    else:
        tar.write_bytes(b"BZh9" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=rf"{tar.name}: cannot read archive \(truncated or corrupt"):
        read_all("atari_head", tar)


def test_atari_head_unknown_action_and_missing_txt_are_errors(tmp_path):
    rows = [*ATARI_ROWS[:2], (3, "0", "0", "40", "0", "18", "null")]
    tar, _ = atari_head_trial(tmp_path / "g", rows=rows)
    with pytest.raises(ValueError, match=rf"{ATARI_TRIAL}.txt: line 4: unknown action '18'"):
        read_all("atari_head", tar)
    tar.with_name(f"{ATARI_TRIAL}.txt").unlink()
    with pytest.raises(ValueError, match=rf"{ATARI_TRIAL}.txt: file missing"):
        read_all("atari_head", tar)


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_atari_head_nan_and_inf_are_errors(tmp_path, value):
    rows = [*ATARI_ROWS[:2], (3, "0", value, "40", "0", "3", "null")]
    tar, _ = atari_head_trial(tmp_path / "g", rows=rows)
    with pytest.raises(ValueError, match=rf"{ATARI_TRIAL}.txt: line 4: score '{value}' is not a finite number"):
        read_all("atari_head", tar)


# --- VPT -----------------------------------------------------------------------------------------


def test_vpt_keys_mouse_and_null_lines(tmp_path):
    mp4, _ = vpt_recording(tmp_path)
    (ep,) = read_all("vpt", tmp_path)
    assert ep.game == "minecraft" and ep.source == str(mp4)
    assert ep.frames.shape == (8, 48, 64, 3) and ep.frames.dtype == np.uint8
    assert all(is_red(square_centre(ep.frames, t)) for t in range(8))
    lab = ep.labels
    assert lab["key_w"].tolist() == [1, 1, U, 0, 0, 0, 0, 0]  # line 3 is null: unlabeled
    assert lab["key_a"].tolist() == [0, 1, U, 0, 0, 0, 0, 0]
    assert lab["key_s"].tolist() == [0, 0, U, 0, 0, 0, 0, 1]
    assert lab["key_d"].tolist() == [0, 0, U, 0, 1, 0, 0, 0]
    assert lab["key_space"].tolist() == [0, 0, U, 1, 0, 0, 0, 0]
    assert lab["key_shift"].tolist() == [0, 0, U, 1, 0, 0, 0, 0]
    assert lab["key_ctrl"].tolist() == [0, 0, U, 0, 1, 0, 0, 0]
    assert lab["attack"].tolist() == [0, 0, U, 1, 0, 0, 0, 0]
    assert lab["use"].tolist() == [0, 0, U, 0, 1, 0, 0, 0]
    np.testing.assert_allclose(lab["mouse_dx"], [1.5, -3.0, np.nan, 0, 0.75, -1.2, 0, 0.15], rtol=1e-6)
    np.testing.assert_allclose(lab["mouse_dy"], [-0.3, 0, np.nan, 0, 0, 0, 0, 0.6], rtol=1e-6)
    # mouse direction; the GUI-open frame (6th) moves a cursor, not the camera
    assert lab["steer"].tolist() == [R, L, U, N, R, U, N, R]
    assert lab["gui_open"].tolist() == [0, 0, U, 0, 0, 1, 0, 0]
    assert lab["hotbar"].tolist() == [0, 0, U, 3, 0, 0, 0, 0]


def test_vpt_frame_step_max_frames_and_dead_zone(tmp_path):
    vpt_recording(tmp_path)
    (ep,) = read_all("vpt", tmp_path, frame_step=2, max_frames=3, dead_zone=1.0)
    assert len(ep.frames) == 3 and ep.step.tolist() == [0, 2, 4]
    assert ep.labels["key_w"].tolist() == [1, U, 0]
    assert ep.labels["steer"].tolist() == [R, U, N]  # 0.75 deg is inside the 1 deg dead zone


def test_vpt_frame_count_mismatch_names_both_files(tmp_path):
    vpt_recording(tmp_path, name="rec", n_frames=9)
    with pytest.raises(ValueError, match=r"rec.mp4 has 9 frames but .*rec.jsonl has 8 lines"):
        read_all("vpt", tmp_path / "rec.jsonl")


def test_vpt_corrupt_video_and_missing_jsonl(tmp_path):
    mp4, _ = vpt_recording(tmp_path, name="rec")
    truncate(mp4)
    with pytest.raises(ValueError, match="rec.mp4: cannot open video"):
        read_all("vpt", mp4)
    (tmp_path / "rec.jsonl").unlink()
    with pytest.raises(ValueError, match="rec.jsonl: file missing"):
        read_all("vpt", tmp_path)


def test_vpt_bad_jsonl_line_is_an_error(tmp_path):
    vpt_recording(tmp_path, name="rec", actions=[vpt_action(), {"mouse": {}}], n_frames=2)
    with pytest.raises(ValueError, match="rec.jsonl: frame 1: expected keyboard.keys"):
        read_all("vpt", tmp_path)


@pytest.mark.parametrize("dx", [float("nan"), float("inf")])
def test_vpt_nan_and_inf_mouse_are_errors(tmp_path, dx):
    vpt_recording(tmp_path, name="rec", actions=[vpt_action(), vpt_action(dx=dx)], n_frames=2)
    assert ("NaN" if dx != dx else "Infinity") in (tmp_path / "rec.jsonl").read_text()  # as Python's json writes it
    with pytest.raises(ValueError, match="rec.jsonl: frame 1: mouse dx/dy must be finite numbers"):
        read_all("vpt", tmp_path)


# --- CS:GO ---------------------------------------------------------------------------------------


def test_csgo_bgr_frames_and_action_vectors(tmp_path):
    h5, frames = csgo_file(tmp_path / "hdf5_dm_july2021_1.hdf5")
    (ep,) = read_all("csgo", h5)
    assert ep.game == "csgo" and ep.episode == 0
    assert ep.frames.shape == (6, 150, 280, 3) and ep.frames.dtype == np.uint8
    np.testing.assert_array_equal(ep.frames, frames)  # stored BGR, returned RGB
    assert tuple(square_centre(ep.frames, 0)) == (255, 0, 0)
    lab = ep.labels
    assert lab["key_w"].tolist() == [1, 1, 0, 0, 0, 0]
    assert lab["key_a"].tolist() == [0, 1, 0, 0, 0, 0]
    assert lab["key_space"].tolist() == [0, 0, 1, 0, 0, 0]
    assert lab["key_r"].tolist() == [0, 0, 1, 0, 0, 0]
    assert lab["key_ctrl"].tolist() == lab["key_shift"].tolist() == lab["key_1"].tolist() == [0, 0, 0, 0, 1, 0]
    assert lab["key_3"].tolist() == [0, 0, 0, 0, 0, 1]
    assert lab["click_left"].tolist() == [0, 1, 0, 0, 0, 0]
    assert lab["click_right"].tolist() == [0, 0, 0, 1, 0, 0]
    assert lab["mouse_dx"].tolist() == [-60, 0, 1000, -2, 2, 0]
    assert lab["mouse_dy"].tolist() == [0, -4, 200, 0, 10, 0]
    assert lab["steer"].tolist() == [L, N, R, L, R, N]


def test_csgo_folder_is_one_episode_per_file_in_numeric_order(tmp_path):
    csgo_file(tmp_path / "hdf5_dm_july2021_10.hdf5", [csgo_vector()] * 2)
    csgo_file(tmp_path / "hdf5_dm_july2021_2.hdf5", [csgo_vector()] * 3)
    episodes = read_all("csgo", tmp_path, game="csgo-dm")
    assert [(e.episode, len(e.frames), e.game) for e in episodes] == [(0, 3, "csgo-dm"), (1, 2, "csgo-dm")]


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing_y", "frame 2: frame_2_x has no frame_2_y"),
        ("short_y", "frame 2: action vector has 50 values; expected 51"),
        ("two_hot", r"frame 2: the mouse x block is not one-hot"),
        ("no_mouse_y", r"frame 2: the mouse y block is not one-hot"),
    ],
)
def test_csgo_malformed_frames_name_file_and_index(tmp_path, damage, message):
    h5, _ = csgo_file(tmp_path / "dm.hdf5")
    with h5py.File(h5, "a") as f:
        y = f["frame_2_y"][()]
        del f["frame_2_y"]
        if damage == "short_y":
            f["frame_2_y"] = y[:50]
        elif damage == "two_hot":
            y[13:15] = 1
            f["frame_2_y"] = y
        elif damage == "no_mouse_y":
            y[36:] = 0
            f["frame_2_y"] = y
    with pytest.raises(ValueError, match=rf"dm.hdf5: {message}"):
        read_all("csgo", h5)


# --- Minari --------------------------------------------------------------------------------------


def test_minari_discrete_actions_with_names(tmp_path):
    h5 = minari_file(tmp_path / "data" / "main_data.hdf5", [
        minari_episode(5, np.array([0, 1, 2, 3, 1])),
        minari_episode(3, np.array([2, 2, 0])),
    ])  # fmt: skip
    names = ["NOOP", "LEFT", "RIGHT", "GAS"]
    mod = get_importer("minari")
    schema = mod.label_schema(h5, action_names=names)
    assert schema["action"].classes == tuple(names)
    episodes = read_all("minari", h5, action_names=names)
    assert [len(e.frames) for e in episodes] == [5, 3]  # the n+1-th observation is dropped
    assert [e.episode for e in episodes] == [0, 1]
    assert {e.game for e in episodes} == {"CarRacing/human-v0"}
    ep = episodes[0]
    assert ep.frames.shape == (5, 24, 64, 3) and ep.frames.dtype == np.uint8
    np.testing.assert_array_equal(ep.frames, square_frames(6, 24, 64)[:5])
    assert ep.labels["action"].tolist() == [0, 1, 2, 3, 1]
    assert ep.labels["steer"].tolist() == [N, L, R, N, L]
    np.testing.assert_allclose(ep.labels["reward"], [0, 0.5, 1, 1.5, 2])
    assert set(ep.labels) <= set(schema.names)


def test_minari_default_action_classes_and_game_from_file_stem(tmp_path):
    h5 = minari_file(tmp_path / "demo.hdf5", [minari_episode(4, np.array([0, 4, 1, 1]))], dataset_id=None)
    assert get_importer("minari").label_schema(h5)["action"].classes == ("0", "1", "2", "3", "4")
    (ep,) = read_all("minari", h5)
    assert ep.game == "demo" and "steer" not in ep.labels  # no direction in bare numbers


def test_minari_box_actions_steer_from_and_grayscale(tmp_path):
    gray = square_frames(5, 24, 64)[..., 0]  # (n+1, H, W) grayscale
    box = np.array([[-0.5, 1.0, 0.0], [0.0, 1.0, 0.0], [0.7, 0.0, 0.2], [0.05, 0.0, 0.0]], np.float32)
    h5 = minari_file(tmp_path / "main_data.hdf5", [minari_episode(4, box, obs=gray)])
    assert get_importer("minari").label_schema(h5).names == ["steer", "reward", "action_0", "action_1", "action_2"]
    (ep,) = read_all("minari", h5, steer_from="action_0", dead_zone=0.1)
    assert ep.frames.shape == (4, 24, 64, 3)
    np.testing.assert_array_equal(ep.frames[..., 0], ep.frames[..., 2])
    np.testing.assert_allclose(ep.labels["action_0"], box[:, 0])
    np.testing.assert_allclose(ep.labels["action_2"], box[:, 2])
    assert ep.labels["steer"].tolist() == [L, N, R, N]


def test_minari_dict_observations_need_obs_key(tmp_path):
    obs = {"pixels": square_frames(4, 24, 64), "state": np.zeros((4, 6), np.float32)}
    h5 = minari_file(tmp_path / "main_data.hdf5", [minari_episode(3, np.array([0, 1, 0]), obs=obs)])
    with pytest.raises(ValueError, match=r"episode_0: observations are a Dict space; pass obs_key, one of \['pixels',"):
        read_all("minari", h5)
    (ep,) = read_all("minari", h5, obs_key="pixels")
    assert ep.frames.shape == (3, 24, 64, 3) and is_red(square_centre(ep.frames, 2))
    with pytest.raises(ValueError, match=r"observations/state: observations float32 \(4, 6\) are not images"):
        read_all("minari", h5, obs_key="state")


def test_minari_errors(tmp_path):
    vec = minari_file(tmp_path / "a" / "main_data.hdf5", [minari_episode(3, np.array([0, 1, 0]),
                                                                         obs=np.zeros((4, 8), np.float32))])
    with pytest.raises(ValueError, match=r"main_data.hdf5: episode_0: observations float32 \(4, 8\) are not images"):
        read_all("minari", vec)
    bad_len = minari_file(tmp_path / "b" / "main_data.hdf5", [minari_episode(3, np.array([0, 1, 0]),
                                                                             obs=square_frames(3, 24, 64))])
    with pytest.raises(ValueError, match=r"3 observations for 3 actions; expected n\+1 = 4"):
        read_all("minari", bad_len)
    names = minari_file(tmp_path / "c" / "main_data.hdf5", [minari_episode(3, np.array([0, 3, 0]))])
    with pytest.raises(ValueError, match=r"episode_0: unknown action 3 at step 1"):
        read_all("minari", names, action_names=["NOOP", "LEFT", "RIGHT"])
    not_minari = tmp_path / "d.hdf5"
    not_minari.write_bytes(b"\x89HDF garbage")
    with pytest.raises(ValueError, match="d.hdf5: cannot open as HDF5"):
        read_all("minari", not_minari)


# --- generic mp4 + csv ---------------------------------------------------------------------------

CSV = """frame,direction,jump,throttle
0,LEFT,0,0.5
1,neutral,1,0.25
2,RIGHT,,1.0
3,,0,
4,RIGHT,1,0
"""


def test_video_csv_infers_label_kinds(tmp_path):
    mp4, _ = video_csv_recording(tmp_path / "kart", CSV)
    schema = get_importer("video_csv").label_schema(tmp_path / "kart")
    assert schema.names == ["steer", "jump", "throttle"]  # the frame index is not a label
    assert [schema[n].kind for n in schema.names] == ["categorical", "binary", "continuous"]
    (ep,) = read_all("video_csv", mp4)
    assert ep.game == "kart" and ep.frames.shape == (5, 48, 64, 3)
    assert all(is_red(square_centre(ep.frames, t)) for t in range(5))
    assert ep.labels["steer"].tolist() == [L, N, R, U, R]
    assert ep.labels["jump"].tolist() == [0, 1, U, 0, 1]
    np.testing.assert_allclose(ep.labels["throttle"], [0.5, 0.25, 1.0, np.nan, 0])
    (sub,) = read_all("video_csv", mp4, frame_step=2)
    assert sub.step.tolist() == [0, 2, 4] and sub.labels["steer"].tolist() == [L, R, R]


def test_video_csv_unknown_action_names(tmp_path):
    video_csv_recording(tmp_path, "frame,steer\n0,LEFT\n1,UP\n2,RIGHT\n")
    with pytest.raises(ValueError, match=r"run1.csv: unknown action name 'UP' in column 'steer' at row 1 \(line 3\)"):
        read_all("video_csv", tmp_path)
    video_csv_recording(tmp_path, "weapon,fire\nknife,0\nrifle,1\nbazooka,0\n")
    with pytest.raises(ValueError, match=r"unknown action name 'knife' in column 'weapon' at row 0"):
        read_all("video_csv", tmp_path)
    with pytest.raises(ValueError, match=r"unknown action name 'bazooka' in column 'weapon' at row 2"):
        read_all("video_csv", tmp_path, classes={"weapon": ["knife", "rifle"]})
    (ep,) = read_all("video_csv", tmp_path, classes={"weapon": ["knife", "rifle", "bazooka"]})
    assert ep.labels["weapon"].tolist() == [0, 1, 2]
    (ep,) = read_all("video_csv", tmp_path, columns={"fire": "continuous"})
    assert list(ep.labels) == ["fire"] and ep.labels["fire"].dtype == np.float32
    video_csv_recording(tmp_path, "jump\n0\n2\n")
    with pytest.raises(ValueError, match=r"value '2' in column 'jump' at row 1 \(line 3\) is not 0 or 1"):
        read_all("video_csv", tmp_path, columns={"jump": "binary"})


@pytest.mark.parametrize("cell", ["nan", "NaN", "-nan", "inf", "-Infinity", "1e999"])
@pytest.mark.parametrize("columns", [None, {"throttle": "continuous"}, {"throttle": "binary"}])
def test_video_csv_nan_and_inf_are_errors(tmp_path, cell, columns):
    """NaN and inf are refused (not turned into unlabeled or stored); the file, column and row are named."""
    video_csv_recording(tmp_path, f"frame,throttle\n0,1\n1,\n2,{cell}\n3,null\n")
    where = rf"run1.csv: non-finite value '{re.escape(cell)}' in column 'throttle' at row 2 \(line 4\)"
    with pytest.raises(ValueError, match=where):
        get_importer("video_csv").label_schema(tmp_path, columns=columns)
    with pytest.raises(ValueError, match=where):
        read_all("video_csv", tmp_path, columns=columns)


def test_video_csv_empty_cell_and_null_mark_unlabeled_frames(tmp_path):
    video_csv_recording(tmp_path, "frame,throttle,jump\n0,0.5,1\n1,,\n2,null,NULL\n3,1,0\n")
    (ep,) = read_all("video_csv", tmp_path)
    np.testing.assert_allclose(ep.labels["throttle"], [0.5, np.nan, np.nan, 1.0])
    assert ep.labels["jump"].tolist() == [1, U, U, 0]
    video_csv_recording(tmp_path, "frame,throttle\n0,0.5\n1,NA\n")  # not a documented marker
    with pytest.raises(ValueError, match=r"non-numeric value 'NA' in column 'throttle' at row 1"):
        read_all("video_csv", tmp_path, columns={"throttle": "continuous"})


def test_video_csv_row_count_must_match_frames(tmp_path):
    video_csv_recording(tmp_path, "steer\nLEFT\nRIGHT\nLEFT\n", n_frames=5)
    with pytest.raises(ValueError, match=r"run1.mp4 has 5 frames but .*run1.csv has 3 rows"):
        read_all("video_csv", tmp_path)


# --- atomic store writes -------------------------------------------------------------------------


def import_to_store(fmt, src, dest, games, size=(24, 32), **params):
    """What the catalog does: stream an importer's episodes through the atomic StoreWriter."""
    mod = get_importer(fmt)
    with StoreWriter(dest, mod.label_schema(src, **params), games=games, frame_shape=size,
                     attrs={"format": fmt}, flush_frames=1) as w:  # fmt: skip
        for ep in mod.read(src, **params):
            w.append(resize_frames(ep.frames, size), ep.game, ep.episode, ep.step, ep.labels, source=ep.source)


def test_import_through_store_writer(tmp_path):
    atari_head_trial(tmp_path / "src" / "ms_pacman")
    import_to_store("atari_head", tmp_path / "src" / "ms_pacman", tmp_path / "out.zarr", ["ms_pacman"])
    ds = open_store(tmp_path / "out.zarr")
    assert ds.sizes["frame"] == 8 and ds["frames"].shape == (8, 24, 32, 3)
    assert ds["steer"].values.tolist() == [N, R, L, U, L, R, L, N]
    assert ds["episode"].values.tolist() == [0] * 4 + [1] * 4


def test_failure_midway_leaves_no_store(tmp_path):
    vpt_recording(tmp_path / "src", name="a_good")
    mp4, _ = vpt_recording(tmp_path / "src", name="b_bad")
    truncate(mp4)
    dest = tmp_path / "out" / "frames.zarr"
    with pytest.raises(ValueError, match="b_bad.mp4"):
        import_to_store("vpt", tmp_path / "src", dest, ["minecraft"])
    assert not dest.exists()
    assert list(dest.parent.glob("*.tmp-*")) == []


def test_jsonl_fixture_is_what_vpt_writes(tmp_path):
    """Guard the fixture itself: one JSON value per line, nulls as JSON null."""
    vpt_recording(tmp_path, name="rec")
    lines = (tmp_path / "rec.jsonl").read_text().splitlines()
    assert len(lines) == len(VPT_ACTIONS) and lines[2] == "null"
    assert json.loads(lines[0])["keyboard"]["keys"] == ["key.keyboard.w"]

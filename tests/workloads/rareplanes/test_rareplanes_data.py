"""rareplanes data: the synthetic generator writes RarePlanes' raw layout, `mlscale rareplanes tile`
reproduces the seed's tiling (on the real example too, and the same at 2 ranks), and bad inputs are
one line naming the file, with nothing written."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.run import REAL_DATA, run_mlscale

from mlscale.workloads.rareplanes.raw import find_scenes, instance_mask
from mlscale.workloads.rareplanes.tiling import tile_origins

REAL = REAL_DATA / "rareplanes_example"


def test_tile_origins_follow_the_seed():
    assert tile_origins(1920, 512) == [0, 469, 938, 1408]  # 4 x 3 = 12 tiles per RarePlanes scene
    assert tile_origins(1080, 512) == [0, 284, 568]
    assert tile_origins(512, 512) == [0] and tile_origins(300, 512) == [0]


def _tiles(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_real_example_is_tiled_unchanged(tmp_path):
    proc = run_mlscale("rareplanes", "tile", REAL, tmp_path)
    assert "1 scene(s)" in proc.stdout
    image, ids = instance_mask(find_scenes(REAL)[0])
    assert ids.max() == 15  # the example's 15 Airplane objects (its 2 Airport objects are not aircraft)
    k = 0
    for y in tile_origins(1080, 512):
        for x in tile_origins(1920, 512):
            stem = f"Adelaide_Airport_0_0_101_tile_{k}"
            mask_file = tmp_path / "masks_tiled" / f"{stem}_mask.png"
            crop = ids[y : y + 512, x : x + 512]
            if not mask_file.exists():  # dropped: no aircraft wider and higher than a pixel
                assert all(len(set(np.nonzero(crop == i)[0])) < 2 or len(set(np.nonzero(crop == i)[1])) < 2
                           for i in np.unique(crop[crop > 0]))  # fmt: skip
            else:
                tile = np.asarray(Image.open(mask_file))
                assert Image.open(mask_file).mode == "L" and tile.shape == (512, 512)
                assert np.array_equal(np.unique(tile), np.arange(tile.max() + 1))  # ids 1..n per tile
                assert ((tile > 0) <= (crop > 0)).all()  # only aircraft pixels, degenerate ones removed
                rgb = np.asarray(Image.open(tmp_path / "images_tiled" / f"{stem}.png"))
                assert np.array_equal(rgb, image[y : y + 512, x : x + 512])
            k += 1
    assert len(list((tmp_path / "images_tiled").iterdir())) == 8


def test_generator_writes_the_raw_layout(raw_scenes):
    scenes = find_scenes(raw_scenes / "train")
    assert len(scenes) == 8 and len(find_scenes(raw_scenes / "test")) == 2
    with Image.open(scenes[0].image) as img, Image.open(scenes[0].mask) as mask:
        assert (img.mode, img.size, mask.mode, mask.size) == ("RGBA", (256, 144), "RGBA", (256, 144))
    root = ET.parse(scenes[0].xml).getroot()
    cats = [o.findtext("category0") for o in root.findall("object")]
    assert "Airplane" in cats and "Airport" in cats  # buildings are painted in the mask too
    for obj in root.findall("object"):
        assert len(obj.findtext("object_mask_color_rgba").split(",")) == 4
        assert obj.find("bndbox2D/xmax") is not None
    _, ids = instance_mask(scenes[0])
    assert ids.max() == cats.count("Airplane")


@pytest.mark.slow
def test_two_ranks_write_the_same_tiles(raw_scenes, tiled, tmp_path):
    run_mlscale("rareplanes", "tile", raw_scenes, tmp_path, "--tile-size", 64, ranks=2)
    ours = _tiles(tmp_path)
    assert ours and ours == _tiles(tiled)
    assert {Path(p).parts[0] for p in ours} == {"train", "test"}


def _copy_real(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(REAL, raw)
    return raw


def _break(raw: Path, what: str) -> Path:
    """Damage one file of the real example; returns the file the error must name."""
    image, mask = raw / "images/Adelaide_Airport_0_0_101.png", raw / "masks/Adelaide_Airport_0_0_101_mask.png"
    xml = raw / "xmls/Adelaide_Airport_0_0_101.xml"
    if what == "no mask":
        mask.unlink()
        return image
    if what == "mask size":
        Image.open(mask).crop((0, 0, 960, 540)).save(mask)
        return mask
    if what == "corrupt png":
        mask.write_bytes(mask.read_bytes()[:5000])
        return mask
    text = xml.read_text()
    if what == "no colours":
        import re

        xml.write_text(re.sub(r"<object_mask_color_rgba>[^<]*</object_mask_color_rgba>", "", text))
    else:  # a colour that is not in the mask
        xml.write_text(text.replace("145,247,100,255", "1,2,3,255"))
    return xml


@pytest.mark.parametrize("what", ["no mask", "mask size", "corrupt png", "no colours", "absent colour"])
def test_bad_input_is_one_line_naming_the_file(tmp_path, what):
    raw = _copy_real(tmp_path)
    bad = _break(raw, what)
    proc = run_mlscale("rareplanes", "tile", raw, tmp_path / "out", check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], proc.stderr
    assert not list((tmp_path / "out").rglob("*.png"))  # nothing half-written


def test_one_bad_file_in_a_directory_is_named(raw_scenes, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(raw_scenes, raw)
    bad = raw / "train/masks/synth_train_00005_mask.png"
    bad.write_bytes(b"not a png")
    proc = run_mlscale("rareplanes", "tile", raw, tmp_path / "out", "--tile-size", 64, check=False, ranks=2)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").rglob("*.png"))

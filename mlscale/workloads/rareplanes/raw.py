"""Reading one raw RarePlanes synthetic scene: `images/X.png` (RGBA), `masks/X_mask.png` (each object
painted in its own RGBA colour) and `xmls/X.xml` (per `<object>`: `category0`, ..., and
`object_mask_color_rgba` "r,g,b,a").

`instance_mask(...)` turns the pixels of every Airplane object's colour into instance ids 1..N, in
the XML's order (the seed's preprocessing). Every problem is one line naming the file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mlscale.errors import UserError
from mlscale.workloads.rareplanes.config import IMAGES, MASKS, XMLS

PLANE = "Airplane"


@dataclass(frozen=True)
class Scene:
    """The three files of one scene."""

    image: Path
    mask: Path
    xml: Path

    @property
    def stem(self) -> str:
        return self.image.stem


def find_scenes(split_dir: Path) -> list[Scene]:
    """Every scene of a raw split directory (images/, masks/, xmls/), by image name; a missing
    mask or XML is an error naming the image."""
    images = split_dir / IMAGES
    if not images.is_dir():
        raise UserError(f"{split_dir}: no {IMAGES}/ directory (a raw split holds {IMAGES}/, {MASKS}/ and {XMLS}/)")
    scenes = []
    for image in sorted(images.glob("*.png")):
        scene = Scene(image, split_dir / MASKS / f"{image.stem}_mask.png", split_dir / XMLS / f"{image.stem}.xml")
        for path, what in ((scene.mask, "mask"), (scene.xml, "XML annotation")):
            if not path.is_file():
                raise UserError(f"{image}: no {what} ({path} does not exist)")
        scenes.append(scene)
    return scenes


def read_png(path: Path, modes: tuple[str, ...]) -> np.ndarray:
    """A PNG as an array, in one of `modes`; a corrupt or foreign file is one line."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in modes:
                raise UserError(f"{path}: PNG mode {img.mode}, expected {' or '.join(modes)}")
            return np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: not a readable PNG ({err})") from None


def plane_colours(xml: Path) -> list[tuple[int, int, int, int]]:
    """The RGBA mask colour of every Airplane object, in the XML's order."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as err:
        raise UserError(f"{xml}: not valid XML ({err})") from None
    objects = root.findall("object")
    colours = []
    for i, obj in enumerate(objects):
        if (obj.findtext("category0") or "").strip() != PLANE:
            continue
        text = obj.findtext("object_mask_color_rgba")
        name = obj.get("id") or f"number {i + 1}"
        if text is None:
            raise UserError(f"{xml}: object {name} has no object_mask_color_rgba")
        try:
            rgba = tuple(int(v) for v in text.split(","))
        except ValueError:
            rgba = ()
        if len(rgba) != 4 or not all(0 <= v <= 255 for v in rgba):
            raise UserError(f"{xml}: object {name}: object_mask_color_rgba {text!r} is not r,g,b,a (0-255)")
        colours.append(rgba)
    if objects and not any(obj.find("object_mask_color_rgba") is not None for obj in objects):
        raise UserError(f"{xml}: no object has an object_mask_color_rgba")
    return colours  # type: ignore[return-value]


def instance_mask(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, instance ids) of a scene: id k marks the pixels of the k-th Airplane colour."""
    image = read_png(scene.image, ("RGBA", "RGB"))[..., :3]
    mask = read_png(scene.mask, ("RGBA",))
    if mask.shape[:2] != image.shape[:2]:
        raise UserError(
            f"{scene.mask}: mask is {mask.shape[1]}x{mask.shape[0]}, its image {scene.image.name} is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    colours = plane_colours(scene.xml)
    if len(colours) > 255:
        raise UserError(f"{scene.xml}: {len(colours)} aircraft; an 8-bit instance mask holds at most 255")
    packed = mask.astype(np.uint32)
    packed = (packed[..., 0] << 24) | (packed[..., 1] << 16) | (packed[..., 2] << 8) | packed[..., 3]
    keys = np.array([(r << 24) | (g << 16) | (b << 8) | a for r, g, b, a in colours], dtype=np.uint32)
    ids = np.zeros(mask.shape[:2], dtype=np.uint8)
    if len(keys):
        order = np.argsort(keys)
        pos = np.searchsorted(keys[order], packed).clip(0, len(keys) - 1)
        hit = keys[order][pos] == packed
        ids[hit] = (order[pos[hit]] + 1).astype(np.uint8)
        present = np.zeros(len(keys), bool)
        present[order[pos[hit]]] = True
        if not present.all():
            missing = colours[int(np.flatnonzero(~present)[0])]
            raise UserError(f"{scene.xml}: colour {','.join(map(str, missing))} of an aircraft is not in {scene.mask}")
    return np.ascontiguousarray(image), ids

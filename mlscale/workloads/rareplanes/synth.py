"""Synthetic RarePlanes-like scenes in the raw layout: `{train,test}/images/X.png` (RGBA),
`masks/X_mask.png` (every object in its own RGBA colour) and `xmls/X.xml` (RarePlanes' fields:
category0..4, object_mask_color_rgba, Sockets, bndbox2D).

A scene is textured ground (low-frequency colour noise and grain), runways with centre lines and
buildings ("Airport" objects: they have mask colours too, so the Airplane filter matters), then
aircraft: fuselage, swept wings and tailplane of varied length, span, heading and livery, each
with a shadow in the scene's sun direction. Aircraft never overlap one another.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mlscale.fileio import atomic_path, atomic_write
from mlscale.workloads.rareplanes.config import IMAGES, MASKS, XMLS

KINDS = [  # (category1..4, span/length, sweep, fuselage width/length)
    ("Civil", "Transport", "Boeing", "737", 0.95, 0.18, 0.07),
    ("Civil", "Transport", "Airbus", "A320", 1.0, 0.16, 0.07),
    ("Civil", "Sport", "PiperAircraft", "PA-28", 1.35, 0.02, 0.09),
    ("Military", "Fighter", "Generic", "Delta", 0.7, 0.35, 0.09),
]


@dataclass
class Plane:
    kind: tuple
    centre: tuple[float, float]
    length: float
    heading: float  # radians, nose direction


def _shape(p: Plane) -> list[list[tuple[float, float]]]:
    """The aircraft's polygons (fuselage, wings, tailplane) in image coordinates."""
    span, sweep, fw = p.kind[4], p.kind[5], p.kind[6]
    L = p.length
    xs = np.linspace(-0.5, 0.5, 12)
    half = fw * np.sqrt(np.clip(1 - (2 * xs) ** 8, 0, 1)) / 2 + 0.005
    fuselage = [(x, w) for x, w in zip(xs, half)] + [(x, -w) for x, w in zip(xs[::-1], half[::-1])]
    s = span / 2
    wing = [(0.12, 0.0), (0.12 - sweep - 0.05, s), (0.02 - sweep - 0.05, s), (-0.08, 0.0)]
    wing += [(0.02 - sweep - 0.05, -s), (0.12 - sweep - 0.05, -s)]
    t = 0.17 * span
    tail = [(-0.36, 0.0), (-0.42 - sweep / 3, t), (-0.48 - sweep / 3, t), (-0.47, 0.0)]
    tail += [(-0.48 - sweep / 3, -t), (-0.42 - sweep / 3, -t)]
    c, sn = np.cos(p.heading), np.sin(p.heading)
    cx, cy = p.centre
    return [
        [(cx + L * (x * c - y * sn), cy + L * (x * sn + y * c)) for x, y in poly] for poly in (fuselage, wing, tail)
    ]


def _ground(rng, w: int, h: int) -> np.ndarray:
    base = rng.choice([(120, 120, 115), (140, 125, 100), (95, 115, 80), (160, 155, 145)]) + rng.normal(0, 10, 3)
    shape = (max(h // 120, 2), max(w // 120, 2), 1)
    coarse = (rng.normal(0, 18, shape) + rng.normal(0, 5, shape[:2] + (3,))).astype(np.float32)  # mostly brightness
    low = np.stack([np.asarray(Image.fromarray(coarse[..., i]).resize((w, h), Image.BICUBIC)) for i in range(3)], -1)
    return np.clip(base + low + rng.normal(0, 6, (h, w, 1)), 0, 255)


def _colour(rng, used: set) -> tuple[int, int, int, int]:
    while True:
        c = (*(int(v) for v in rng.integers(1, 256, 3)), 255)
        if c not in used:
            used.add(c)
            return c


def make_scene(rng, w: int, h: int, n_planes: int, lengths: tuple[int, int]):
    """(RGBA image, RGBA mask, objects) of one scene; objects are dicts for the XML."""
    image = Image.fromarray(_ground(rng, w, h).astype(np.uint8)).convert("RGBA")
    mask = Image.new("RGBA", (w, h), (0, 0, 0, 255))
    draw, mdraw = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    used: set = set()
    objects = []
    for _ in range(rng.integers(1, 3)):  # runways: dark strips with a dashed centre line
        y, width = rng.uniform(0, h), rng.uniform(0.03, 0.08) * h
        draw.rectangle([0, y, w, y + width], fill=(70, 70, 72, 255))
        for x in range(0, w, 60):
            draw.rectangle([x, y + width / 2 - 1, x + 25, y + width / 2 + 1], fill=(230, 230, 230, 255))
    for _ in range(rng.integers(2, 6)):  # buildings: Airport objects, painted in the mask too
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        bw, bh = rng.uniform(0.03, 0.12) * w, rng.uniform(0.03, 0.12) * h
        roof = tuple(int(v) for v in rng.integers(60, 250, 3)) + (255,)
        colour = _colour(rng, used)
        draw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=roof)
        mdraw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=colour)
        objects.append({"categories": ("Airport", "Building"), "colour": colour, "box": (x0, y0, x0 + bw, y0 + bh)})
    sun = rng.uniform(0, 2 * np.pi)
    planes: list[Plane] = []
    for _ in range(200):
        if len(planes) >= n_planes:
            break
        length = rng.uniform(*lengths)
        centre = (rng.uniform(length / 3, w - length / 3), rng.uniform(length / 3, h - length / 3))
        if any(np.hypot(centre[0] - q.centre[0], centre[1] - q.centre[1]) < 0.75 * (length + q.length) for q in planes):
            continue
        planes.append(Plane(KINDS[rng.integers(len(KINDS))], centre, length, rng.uniform(0, 2 * np.pi)))
    for p in planes:
        polys = _shape(p)
        off = 0.1 * p.length
        for poly in polys:  # the shadow first, under the aircraft
            draw.polygon([(x + off * np.cos(sun), y + off * np.sin(sun)) for x, y in poly], fill=(35, 35, 38, 255))
        grey = int(rng.choice([rng.integers(200, 250), rng.integers(120, 170)]))
        livery = tuple(int(np.clip(grey + v, 0, 255)) for v in rng.normal(0, 15, 3)) + (255,)
        colour = _colour(rng, used)
        for poly in polys:
            draw.polygon(poly, fill=livery)
            mdraw.polygon(poly, fill=colour)
        pts = np.array([pt for poly in polys for pt in poly])
        lo, hi = pts.min(0).clip(0, (w - 1, h - 1)), pts.max(0).clip(0, (w - 1, h - 1))
        fus, wing, tail = polys
        sockets = {"Nose": fus[len(fus) // 4], "RightWing": wing[1], "LeftWing": wing[4], "Tail": tail[0]}
        objects.append(
            {"categories": ("Airplane", *p.kind[:4]), "colour": colour, "box": (*lo, *hi), "sockets": sockets}
        )
    return image, mask, objects


def scene_xml(name: str, w: int, h: int, objects: list[dict]) -> str:
    root = ET.Element("image")
    ET.SubElement(root, "annotation", vendor="mlscale-synthetic")
    ET.SubElement(root, "filename").text = name
    res = ET.SubElement(root, "image_resolution")
    ET.SubElement(res, "width").text, ET.SubElement(res, "height").text = str(w), str(h)
    ET.SubElement(root, "num_object_mask_objects").text = str(len(objects))
    for i, obj in enumerate(objects):
        el = ET.SubElement(root, "object", id=f"{i:032X}", persistent_id=f"SM_{'_'.join(obj['categories'])}_{i}")
        for k, cat in enumerate(obj["categories"]):
            ET.SubElement(el, f"category{k}").text = cat
        ET.SubElement(el, "object_mask_color_rgba").text = ",".join(map(str, obj["colour"]))
        if "sockets" in obj:
            sockets = ET.SubElement(el, "Sockets")
            for part, (x, y) in obj["sockets"].items():
                ET.SubElement(
                    ET.SubElement(sockets, f"Bone_PlaneAnnotation_{part}"), "screen"
                ).text = f"X={x:.3f} Y={y:.3f}"
        box = ET.SubElement(el, "bndbox2D")
        for key, v in zip(("xmin", "ymin", "xmax", "ymax"), obj["box"]):
            ET.SubElement(box, key).text = str(int(round(v)))
    ET.indent(root, "\t")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_split(out: Path, prefix: str, count: int, rng, w: int, h: int, planes: int, lengths) -> int:
    """Write `count` scenes into out/{images,masks,xmls}; returns the number of aircraft."""
    for sub in (IMAGES, MASKS, XMLS):
        (out / sub).mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(count):
        name = f"{prefix}_{i:05d}"
        image, mask, objects = make_scene(rng, w, h, max(1, int(rng.poisson(planes))), lengths)
        for img, path in ((image, out / IMAGES / f"{name}.png"), (mask, out / MASKS / f"{name}_mask.png")):
            with atomic_path(path) as tmp:
                img.save(tmp, format="PNG", compress_level=3)
        atomic_write(out / XMLS / f"{name}.xml", scene_xml(f"{name}.png", w, h, objects))
        total += sum(o["categories"][0] == "Airplane" for o in objects)
    return total

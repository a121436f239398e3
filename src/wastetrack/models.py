"""The small set of data models passed between the stages of a night.

Every model is a pandas (or geopandas) DataFrame with the columns below; the
column tuples are the contract between stages, and ``require_columns`` checks it
at stage boundaries so a mistake fails with the stage's name instead of a
KeyError three modules later. Conventions shared by all models:

* times are tz-aware pandas timestamps in ``Asia/Shanghai``;
* coordinates are WGS-84 degrees (``lon``, ``lat``); metric work projects to
  ``wastetrack.coords.METRIC_CRS`` or uses ``haversine_m``;
* ``vehicle_id`` is the normalised plate (``沪A·D1234`` → ``沪AD1234``);
* adcodes are 6-character strings, empty string when unknown.

Flow: Fixes → (clean) Fixes → (stays) Stays → (geofence) Stays+place →
(hauls) Hauls → (reconcile) Hauls+manifest → (detect, trace) Leads.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

#: GPS fixes, one row per fix (``contract.readers.read_gps``; ``clean.clean_fixes`` keeps the columns).
FIX_COLUMNS = (
    "vehicle_id", "ts", "lon", "lat", "speed_kmh", "heading", "loaded", "tipping",
    "source_file", "source_row",
)

#: Electronic manifests (电子联单), one row per manifest, latest status.
MANIFEST_COLUMNS = (
    "manifest_id", "vehicle_id", "carrier_id", "origin_site_id", "dest_site_id", "waste_type",
    "volume_m3", "issued_at", "departed_at", "received_at", "status", "cross_region_filing",
)

#: Dumping reports; lon/lat already WGS-84.
REPORT_COLUMNS = (
    "report_id", "reported_at", "observed_from", "observed_to", "lon", "lat", "address",
    "waste_type", "volume_m3_est", "source", "reporting_unit", "description",
)

FEEDBACK_COLUMNS = ("lead_id", "liaison_id", "at", "status", "case_no", "penalty_cny", "note")

#: Sites (GeoDataFrame); geometry is the fence polygon in WGS-84 (Point sites are buffered by radius_m).
SITE_COLUMNS = (
    "site_id", "kind", "name", "county_adcode", "accepts", "permit_no", "valid_from", "valid_to",
    "radius_m", "builder", "contractor", "geometry",
)
RECEIVER_KINDS = ("disposal", "recycling", "transfer")

VEHICLE_COLUMNS = (
    "vehicle_id", "carrier_id", "terminal_id", "capacity_m3", "registered_adcode", "permit_valid_to",
)
CARRIER_COLUMNS = ("carrier_id", "name", "county_adcode", "contact_phone")
LIAISON_COLUMNS = ("liaison_id", "level", "adcode", "unit", "name", "email", "phone", "role", "active")

#: Administrative boundaries (GeoDataFrame, WGS-84): one row per province, city and county.
BOUNDARY_COLUMNS = ("adcode", "name", "level", "parent_adcode", "province_adcode", "city_adcode", "geometry")

#: A stay: the truck stood within ``stay_radius_m`` for at least ``stay_min_duration_s``.
STAY_COLUMNS = (
    "stay_id", "vehicle_id", "start", "end", "duration_s", "lon", "lat", "n_fixes",
    "tipping_any", "loaded_before", "loaded_after",
)
#: Columns ``geofence.label_stays`` adds to stays.
PLACE_COLUMNS = ("site_id", "site_kind", "county_adcode", "city_adcode", "province_adcode")

#: A haul: loaded at a construction site, unloaded somewhere (or unknown, with a gap).
HAUL_COLUMNS = (
    "haul_id", "vehicle_id", "origin_site_id", "origin_stay_id", "depart", "unload_stay_id",
    "unload_start", "unload_end", "unload_lon", "unload_lat", "unload_site_id", "unload_county_adcode",
    "unload_province_adcode", "unload_evidence", "gap_start", "gap_end", "gap_lon", "gap_lat",
    "gap_max_reach_m", "returned_empty", "end",
)

#: Lead properties exactly as ``leads.geojson`` carries them (plus ``lon``/``lat`` for the Point).
LEAD_COLUMNS = (
    "lead_id", "kind", "cross_border", "score", "vehicle_id", "carrier_id", "start", "end",
    "county_adcode", "province_adcode", "origin_site_id", "origin_county_adcode", "manifest_id",
    "report_ids", "candidates", "primary_liaison_id", "cc_liaison_ids",
)
LEAD_KINDS = ("illegal_dump", "diverted", "unmanifested", "track_gap", "report_trace")
WASTE_TYPES = ("muck", "mud", "construction", "demolition", "decoration")
MANIFEST_STATUSES = ("issued", "in_transit", "received", "cancelled")
REPORT_SOURCES = ("patrol", "hotline", "camera", "drone", "other")
#: feedback ``status`` (contract v1.1: the last three name another county in ``to_adcode``)
FEEDBACK_STATUSES = ("received", "case_filed", "not_established", "closed", "transferred", "assist_requested",
                     "assist_replied")
#: statuses that need ``to_adcode`` (移送 to the competent county; 委托调查取证 and its reply)
FEEDBACK_TO_STATUSES = ("transferred", "assist_requested", "assist_replied")
#: the optional v1.1 column of feedback.csv, kept after ``FEEDBACK_COLUMNS``
FEEDBACK_TO_ADCODE = "to_adcode"


class SchemaError(ValueError):
    """A stage received a frame without the columns its model promises."""


def require_columns(frame: pd.DataFrame, columns: Iterable[str], model: str) -> None:
    """Fail fast, naming the model, when a stage gets a frame missing model columns."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{model}: missing columns {missing}")


def empty_frame(columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})

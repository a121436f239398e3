"""What the store holds: every table's columns, their logical kinds and keys, described once.

Both backends translate this description (their migrations under ``store/sql/``), the
codec encodes and decodes by it, and the shared SQL names columns from it, so a table
cannot drift apart between SQLite and PostGIS without a test noticing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from numbers import Integral

from wastetrack.models import FEEDBACK_COLUMNS, HAUL_COLUMNS, LEAD_COLUMNS, PLACE_COLUMNS, STAY_COLUMNS

CRS = "EPSG:4326"
#: rows per executemany call: bounds the memory of the encoded rows for ~100k-stay nights
CHUNK_ROWS = 20_000
#: ids per ``IN (…)`` list: far below SQLite's 32766-variable limit and PostgreSQL's 65535
IN_CHUNK = 500

# --- table descriptions ------------------------------------------------------------------------

_KINDS = {
    # stays / PLACE_COLUMNS
    "stay_id": "text", "vehicle_id": "text", "start": "ts", "end": "ts", "duration_s": "real",
    "lon": "real", "lat": "real", "n_fixes": "int", "tipping_any": "bool", "loaded_before": "bool",
    "loaded_after": "bool", "site_id": "text", "site_kind": "text", "county_adcode": "text",
    "city_adcode": "text", "province_adcode": "text",
    # hauls
    "haul_id": "text", "origin_site_id": "text", "origin_stay_id": "text", "depart": "ts",
    "unload_stay_id": "text", "unload_start": "ts", "unload_end": "ts", "unload_lon": "real",
    "unload_lat": "real", "unload_site_id": "text", "unload_county_adcode": "text",
    "unload_province_adcode": "text", "unload_evidence": "text", "gap_start": "ts", "gap_end": "ts",
    "gap_lon": "real", "gap_lat": "real", "gap_max_reach_m": "real", "returned_empty": "bool",
    # leads
    "lead_id": "text", "kind": "text", "cross_border": "bool", "score": "real", "carrier_id": "text",
    "origin_county_adcode": "text", "manifest_id": "text", "report_ids": "json", "candidates": "json",
    "primary_liaison_id": "text", "cc_liaison_ids": "json", "evidence": "json",
    # lead_tracks (wkt: a WGS-84 LINESTRING; PostGIS derives geometry(LineString, 4326) from it)
    "wkt": "wkt",
    # night_state: the carry-over state for the next night
    "uri": "text", "vehicles": "int", "fixes": "int", "created_at": "ts", "state": "json",
    # runs, registry, feedback
    "date": "text", "status": "text", "started_at": "ts", "finished_at": "ts", "version": "text",
    "run_json": "json", "run_id": "text", "out_version": "text", "first_date": "text", "last_date": "text",
    "case_no": "text", "penalty_cny": "real", "updated_at": "ts", "liaison_id": "text", "at": "ts", "note": "text",
    # the liaison loop (migration 003): feedback's v1.1 column, mails, lead events, lead state, reply files
    "to_adcode": "text", "mail_id": "text", "purpose": "text", "email": "text", "subject": "text",
    "body_note": "text", "attempts": "int", "sent_at": "ts", "error": "text", "message_id": "text",
    "role": "text", "event_id": "text", "event": "text", "adcode": "text", "detail": "text", "source": "text",
    "ref": "text", "phase": "text", "handler_liaison_id": "text", "handler_adcode": "text",
    "delivered_at": "ts", "received_at": "ts", "verdict_at": "ts", "filed_at": "ts", "closed_at": "ts",
    "due_date": "text", "overdue": "bool", "escalation": "int", "sha256": "text", "file_name": "text",
    "imported_at": "ts", "rows_total": "int", "rows_accepted": "int", "rows_quarantined": "int", "row": "int",
    "reason": "text",
}


def _spec(columns: Iterable[str]) -> dict[str, str]:
    return {c: _KINDS[c] for c in columns}


#: the columns of ``replace_night(tracks=…)``: the suspect's track around each lead
TRACK_COLUMNS = ("lead_id", "vehicle_id", "start", "end", "n_fixes", "wkt")
#: what ``replace_night(state=…)`` must hold (key → Python type); any other JSON may come along
STATE_KEYS: dict[str, type] = {"uri": str, "vehicles": Integral, "fixes": Integral, "created_at": str}

#: table → {column: kind}, in stored order. The night tables lead with ``date``. Columns added by a
#: later migration go last (that is where ``ALTER TABLE … ADD COLUMN`` puts them).
TABLES: dict[str, dict[str, str]] = {
    "stays": _spec(("date", *STAY_COLUMNS, *PLACE_COLUMNS)),
    "hauls": _spec(("date", *HAUL_COLUMNS)),
    "leads": _spec(("date", *LEAD_COLUMNS, "lon", "lat", "evidence")),
    "lead_tracks": _spec(("date", *TRACK_COLUMNS)),
    "night_state": _spec(("date", "uri", "vehicles", "fixes", "created_at", "state")),
    "runs": _spec(("date", "status", "started_at", "finished_at", "version", "run_json", "run_id",
                   "out_version")),
    "lead_registry": _spec(("lead_id", "kind", "vehicle_id", "first_date", "last_date", "status",
                            "case_no", "penalty_cny", "updated_at")),
    "feedback": _spec((*FEEDBACK_COLUMNS, "to_adcode")),
    # the liaison loop (migration 003)
    "mails": _spec(("mail_id", "date", "purpose", "liaison_id", "email", "subject", "body_note", "status",
                    "attempts", "created_at", "sent_at", "error", "message_id")),
    "mail_leads": _spec(("mail_id", "lead_id", "liaison_id", "role")),
    "lead_events": _spec(("event_id", "lead_id", "at", "event", "liaison_id", "adcode", "detail", "source",
                          "ref")),
    "lead_state": _spec(("lead_id", "phase", "handler_liaison_id", "handler_adcode", "case_no", "penalty_cny",
                         "delivered_at", "received_at", "verdict_at", "filed_at", "closed_at", "due_date",
                         "overdue", "escalation", "state", "updated_at")),
    "reply_files": _spec(("sha256", "file_name", "imported_at", "rows_total", "rows_accepted",
                          "rows_quarantined")),
    "reply_quarantine": _spec(("source", "row", "lead_id", "liaison_id", "reason", "imported_at")),
}
#: primary keys, which are also the order ``read`` returns rows in
KEYS: dict[str, tuple[str, ...]] = {
    "stays": ("date", "stay_id"), "hauls": ("date", "haul_id"), "leads": ("date", "lead_id"),
    "lead_tracks": ("date", "lead_id"), "night_state": ("date",),
    "runs": ("date",), "lead_registry": ("lead_id",),
    "feedback": ("lead_id", "liaison_id", "at", "status"),
    "mails": ("mail_id",), "mail_leads": ("mail_id", "lead_id"), "lead_events": ("event_id",),
    "lead_state": ("lead_id",), "reply_files": ("sha256",), "reply_quarantine": ("source", "row"),
}
#: replaced as a whole by ``replace_night``, in insert order (parents first; deleted in reverse)
NIGHT_TABLES = ("stays", "hauls", "leads", "lead_tracks", "night_state")
#: read as GeoDataFrames (EPSG:4326): points from lon/lat, or the track's LineString from wkt
GEO_TABLES = ("stays", "leads", "lead_tracks")
FEEDBACK_KEY = KEYS["feedback"]
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

-- wastetrack store, SQLite, migration 002: the suspects' tracks around leads, the night's
-- carry-over state for the next night, and which run/output version a night published.
-- (PostGIS: postgis_002_tracks_state_publication.sql, the same tables with geometry.)

-- ALTER TABLE … ADD COLUMN appends: tables.TABLES lists these two last for that reason.
ALTER TABLE runs ADD COLUMN run_id TEXT;           -- run.get("run_id"): the run that wrote the night
ALTER TABLE runs ADD COLUMN out_version TEXT;      -- run.get("out_version"): the outputs it published

-- One track per lead of the night: the suspect's fixes around the event, as WGS-84 WKT
-- ('LINESTRING(121.31 31.12, …)'; checked in Python before the write: a non-empty
-- LineString in lon/lat degrees). PostGIS keeps geometry(LineString, 4326) beside it.
CREATE TABLE lead_tracks (
    date       TEXT NOT NULL,
    lead_id    TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    "start"    TEXT NOT NULL,
    "end"      TEXT NOT NULL,
    n_fixes    INTEGER NOT NULL,
    wkt        TEXT NOT NULL,
    PRIMARY KEY (date, lead_id),
    FOREIGN KEY (date, lead_id) REFERENCES leads (date, lead_id)
) STRICT;
CREATE INDEX lead_tracks_vehicle ON lead_tracks (vehicle_id, date);

-- What the next night needs from this one (where the carried-over fixes are, how many),
-- written in the same transaction as the night so the two can never disagree.
CREATE TABLE night_state (
    date       TEXT NOT NULL PRIMARY KEY REFERENCES runs (date),
    uri        TEXT NOT NULL,
    vehicles   INTEGER NOT NULL,
    fixes      INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    state      TEXT NOT NULL                   -- JSON object: the whole mapping as given
) STRICT;

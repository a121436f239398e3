-- wastetrack store, SQLite, migration 001: the schema as first released (PRAGMA user_version = 1).
-- Column lists and kinds are described once in wastetrack/store/tables.py (TABLES); the
-- PostGIS migrations translate the same description:
--   text → TEXT/text, real → REAL/double precision, int → INTEGER/integer,
--   bool → INTEGER 0/1/NULL (STRICT has no boolean) / boolean,
--   ts → TEXT ISO 8601 local time with offset ('2026-11-20T23:41:07+08:00', '.ffffff'
--        only when non-zero; sorts chronologically within one offset) / timestamptz,
--   json → TEXT / jsonb.
-- STRICT tables reject a value of the wrong type, as PostgreSQL would.
-- "start" and "end" are reserved words: always quoted.
-- The migration runner (wastetrack/store/migrations.py) runs this in one transaction and
-- records it in schema_version; never edit it once released: add a new numbered file.

CREATE TABLE IF NOT EXISTS runs (
    date        TEXT NOT NULL PRIMARY KEY,      -- the night's local date, YYYY-MM-DD
    status      TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    version     TEXT,
    run_json    TEXT NOT NULL                   -- run.json as written for the night
) STRICT;

CREATE TABLE IF NOT EXISTS stays (
    date            TEXT NOT NULL REFERENCES runs (date),
    stay_id         TEXT NOT NULL,
    vehicle_id      TEXT NOT NULL,
    "start"         TEXT NOT NULL,
    "end"           TEXT NOT NULL,
    duration_s      REAL,
    lon             REAL,                       -- WGS-84; PostGIS adds geom Point(4326) from these
    lat             REAL,
    n_fixes         INTEGER,
    tipping_any     INTEGER,
    loaded_before   INTEGER,
    loaded_after    INTEGER,
    site_id         TEXT,
    site_kind       TEXT,
    county_adcode   TEXT,
    city_adcode     TEXT,
    province_adcode TEXT,
    PRIMARY KEY (date, stay_id)
) STRICT;
CREATE INDEX IF NOT EXISTS stays_vehicle ON stays (vehicle_id, date);

CREATE TABLE IF NOT EXISTS hauls (
    date                   TEXT NOT NULL REFERENCES runs (date),
    haul_id                TEXT NOT NULL,
    vehicle_id             TEXT NOT NULL,
    origin_site_id         TEXT,
    origin_stay_id         TEXT,
    depart                 TEXT,
    unload_stay_id         TEXT,
    unload_start           TEXT,
    unload_end             TEXT,
    unload_lon             REAL,
    unload_lat             REAL,
    unload_site_id         TEXT,
    unload_county_adcode   TEXT,
    unload_province_adcode TEXT,
    unload_evidence        TEXT,
    gap_start              TEXT,
    gap_end                TEXT,
    gap_lon                REAL,
    gap_lat                REAL,
    gap_max_reach_m        REAL,
    returned_empty         INTEGER,
    "end"                  TEXT,
    PRIMARY KEY (date, haul_id)
) STRICT;
CREATE INDEX IF NOT EXISTS hauls_vehicle ON hauls (vehicle_id, date);

CREATE TABLE IF NOT EXISTS leads (
    date                 TEXT NOT NULL REFERENCES runs (date),
    lead_id              TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    cross_border         INTEGER,
    score                REAL,
    vehicle_id           TEXT,
    carrier_id           TEXT,
    "start"              TEXT,
    "end"                TEXT,
    county_adcode        TEXT,
    province_adcode      TEXT,
    origin_site_id       TEXT,
    origin_county_adcode TEXT,
    manifest_id          TEXT,
    report_ids           TEXT,                  -- JSON list
    candidates           TEXT,                  -- JSON list
    primary_liaison_id   TEXT,
    cc_liaison_ids       TEXT,                  -- JSON list
    lon                  REAL,
    lat                  REAL,
    evidence             TEXT,                  -- JSON object: why the lead was raised
    PRIMARY KEY (date, lead_id)
) STRICT;
CREATE INDEX IF NOT EXISTS leads_vehicle ON leads (vehicle_id, date);
CREATE INDEX IF NOT EXISTS leads_lead ON leads (lead_id);

-- Across nights. Derived from leads + feedback on every write (base.derive_registry).
CREATE TABLE IF NOT EXISTS lead_registry (
    lead_id     TEXT NOT NULL PRIMARY KEY,
    kind        TEXT NOT NULL,
    vehicle_id  TEXT,
    first_date  TEXT NOT NULL,
    last_date   TEXT NOT NULL,
    status      TEXT NOT NULL,                  -- 'new' or the latest feedback status
    case_no     TEXT,
    penalty_cny REAL,
    updated_at  TEXT NOT NULL                   -- when this row last changed
) STRICT;
CREATE INDEX IF NOT EXISTS lead_registry_vehicle ON lead_registry (vehicle_id, last_date);

-- Liaisons' replies as received; no foreign key: a reply about an unknown lead is kept.
CREATE TABLE IF NOT EXISTS feedback (
    lead_id     TEXT NOT NULL,
    liaison_id  TEXT NOT NULL,
    at          TEXT NOT NULL,
    status      TEXT NOT NULL,
    case_no     TEXT,
    penalty_cny REAL,
    note        TEXT,
    PRIMARY KEY (lead_id, liaison_id, at, status)
) STRICT;

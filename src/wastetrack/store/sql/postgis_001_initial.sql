-- wastetrack store, PostGIS, migration 001: the same tables as sqlite_001_initial.sql.
-- Translation of wastetrack/store/tables.py (TABLES):
--   text → text (key and date columns COLLATE "C": byte order, as SQLite's BINARY, so rows
--          come back in the same order on both backends), real → double precision
--   (the encoder sends NULL, never NaN), int → integer, bool → boolean, ts → timestamptz,
--   json → jsonb; lon/lat pairs → two double precision columns plus a generated
--   geometry(Point, 4326) with a GiST index (NULL where lon or lat is NULL).
-- Tables are created in the first schema of the connection's search_path; PostGIS must be
-- installed and its schema (usually public) on the search_path. The migration runner runs
-- this in one transaction under an advisory lock and records it in schema_version.
-- Never edit it once released: add a new numbered file.

CREATE TABLE runs (
    date        text COLLATE "C" NOT NULL PRIMARY KEY,
    status      text NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    version     text,
    run_json    jsonb NOT NULL
);

CREATE TABLE stays (
    date            text COLLATE "C" NOT NULL REFERENCES runs (date),
    stay_id         text COLLATE "C" NOT NULL,
    vehicle_id      text NOT NULL,
    "start"         timestamptz NOT NULL,
    "end"           timestamptz NOT NULL,
    duration_s      double precision,
    lon             double precision,
    lat             double precision,
    n_fixes         integer,
    tipping_any     boolean,
    loaded_before   boolean,
    loaded_after    boolean,
    site_id         text,
    site_kind       text,
    county_adcode   text,
    city_adcode     text,
    province_adcode text,
    geom            geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED,
    PRIMARY KEY (date, stay_id)
);
CREATE INDEX stays_vehicle ON stays (vehicle_id, date);
CREATE INDEX stays_geom ON stays USING gist (geom);

CREATE TABLE hauls (
    date                   text COLLATE "C" NOT NULL REFERENCES runs (date),
    haul_id                text COLLATE "C" NOT NULL,
    vehicle_id             text NOT NULL,
    origin_site_id         text,
    origin_stay_id         text,
    depart                 timestamptz,
    unload_stay_id         text,
    unload_start           timestamptz,
    unload_end             timestamptz,
    unload_lon             double precision,
    unload_lat             double precision,
    unload_site_id         text,
    unload_county_adcode   text,
    unload_province_adcode text,
    unload_evidence        text,
    gap_start              timestamptz,
    gap_end                timestamptz,
    gap_lon                double precision,
    gap_lat                double precision,
    gap_max_reach_m        double precision,
    returned_empty         boolean,
    "end"                  timestamptz,
    -- where the haul unloaded
    unload_geom            geometry(Point, 4326)
                           GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(unload_lon, unload_lat), 4326)) STORED,
    PRIMARY KEY (date, haul_id)
);
CREATE INDEX hauls_vehicle ON hauls (vehicle_id, date);
CREATE INDEX hauls_unload_geom ON hauls USING gist (unload_geom);

CREATE TABLE leads (
    date                 text COLLATE "C" NOT NULL REFERENCES runs (date),
    lead_id              text COLLATE "C" NOT NULL,
    kind                 text NOT NULL,
    cross_border         boolean,
    score                double precision,
    vehicle_id           text,
    carrier_id           text,
    "start"              timestamptz,
    "end"                timestamptz,
    county_adcode        text,
    province_adcode      text,
    origin_site_id       text,
    origin_county_adcode text,
    manifest_id          text,
    report_ids           jsonb,                 -- JSON list
    candidates           jsonb,                 -- JSON list
    primary_liaison_id   text,
    cc_liaison_ids       jsonb,                 -- JSON list
    lon                  double precision,
    lat                  double precision,
    evidence             jsonb,                 -- JSON object: why the lead was raised
    geom                 geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED,
    PRIMARY KEY (date, lead_id)
);
CREATE INDEX leads_vehicle ON leads (vehicle_id, date);
CREATE INDEX leads_lead ON leads (lead_id);
CREATE INDEX leads_geom ON leads USING gist (geom);

-- Across nights. Derived from leads + feedback on every write (store/registry.py).
CREATE TABLE lead_registry (
    lead_id     text COLLATE "C" NOT NULL PRIMARY KEY,
    kind        text NOT NULL,
    vehicle_id  text,
    first_date  text COLLATE "C" NOT NULL,
    last_date   text COLLATE "C" NOT NULL,
    status      text NOT NULL,                  -- 'new' or the latest feedback status
    case_no     text,
    penalty_cny double precision,
    updated_at  timestamptz NOT NULL            -- when this row last changed
);
CREATE INDEX lead_registry_vehicle ON lead_registry (vehicle_id, last_date);

-- Liaisons' replies as received; no foreign key: a reply about an unknown lead is kept.
CREATE TABLE feedback (
    lead_id     text COLLATE "C" NOT NULL,
    liaison_id  text COLLATE "C" NOT NULL,
    at          timestamptz NOT NULL,
    status      text COLLATE "C" NOT NULL,
    case_no     text,
    penalty_cny double precision,
    note        text,
    PRIMARY KEY (lead_id, liaison_id, at, status)
);

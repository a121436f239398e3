-- wastetrack store, PostGIS, migration 002: the same as sqlite_002_tracks_state_publication.sql,
-- with the tracks as geometry(LineString, 4326) (generated from the WKT, GiST-indexed).

ALTER TABLE runs
    ADD COLUMN run_id text,                       -- run.get("run_id"): the run that wrote the night
    ADD COLUMN out_version text;                  -- run.get("out_version"): the outputs it published

-- One track per lead of the night. The WKT is kept as given (reads return it unchanged on
-- both backends); geom is derived from it, so the two cannot disagree.
CREATE TABLE lead_tracks (
    date       text COLLATE "C" NOT NULL,
    lead_id    text COLLATE "C" NOT NULL,
    vehicle_id text NOT NULL,
    "start"    timestamptz NOT NULL,
    "end"      timestamptz NOT NULL,
    n_fixes    integer NOT NULL,
    wkt        text NOT NULL,
    geom       geometry(LineString, 4326) GENERATED ALWAYS AS (ST_GeomFromText(wkt, 4326)) STORED,
    PRIMARY KEY (date, lead_id),
    FOREIGN KEY (date, lead_id) REFERENCES leads (date, lead_id)
);
CREATE INDEX lead_tracks_vehicle ON lead_tracks (vehicle_id, date);
CREATE INDEX lead_tracks_geom ON lead_tracks USING gist (geom);

-- What the next night needs from this one, written in the same transaction as the night.
CREATE TABLE night_state (
    date       text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES runs (date),
    uri        text NOT NULL,
    vehicles   integer NOT NULL,
    fixes      bigint NOT NULL,
    created_at timestamptz NOT NULL,
    state      jsonb NOT NULL                 -- the whole mapping as given
);

"""Thresholds of the night run, with their units in their names.

One frozen dataclass so a run's behaviour is fully described by its ``Params``
(they are written to ``run.json``), a notebook can try other values with
``dataclasses.replace``, and no stage hides a magic number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Params:
    # --- cleaning -------------------------------------------------------------------------------
    #: implied speed above which a fix that jumps away and back is a teleport (muck trucks are capped ~80)
    teleport_speed_kmh: float = 150.0
    # --- stays ----------------------------------------------------------------------------------
    #: half-width of the time window used for the smoothed speed that decides "standing still"
    stay_window_s: float = 60.0
    #: smoothed speed below which a truck is standing (GPS jitter of a parked truck is ~1 km/h)
    stay_max_speed_kmh: float = 3.5
    #: shortest stay kept: longer than a red light, shorter than the quickest unloading (~4 min)
    stay_min_duration_s: float = 150.0
    #: a silence longer than this splits stays (parked terminals report every 300 s with ACC off, so
    #: shorter silences are normal; a truck cannot drive off, unload and come back in 7 minutes)
    stay_silence_split_s: float = 420.0
    #: two stays this close in time and space are one (a truck shunting inside a site)
    stay_merge_gap_s: float = 180.0
    stay_merge_distance_m: float = 150.0
    # --- geofence -------------------------------------------------------------------------------
    #: a stay within this distance of a fence counts as at the site (GPS drift in urban canyons and
    #: queues on the road outside the gate put a truck that is at the site 60-150 m off its fence)
    fence_tolerance_m: float = 150.0
    #: an off-fence unloading this close to the manifest's receiver, with its gate-in scan during the stay,
    #: is at that receiver (the receiver's scan outweighs a drifting GPS)
    receiver_scan_distance_m: float = 300.0
    # --- hauls ----------------------------------------------------------------------------------
    #: a construction-site visit shorter than this is not a loading (an excavator needs minutes)
    load_min_dwell_s: float = 300.0
    #: stays at one construction site this close in time are one visit (queue, then loading)
    load_visit_merge_gap_s: float = 600.0
    #: silence while loaded long enough to unload; shorter drop-outs are normal and never leads
    track_gap_min_s: float = 720.0
    #: longer silences are a terminal switched off between shifts, not a haul gone dark
    track_gap_max_s: float = 4 * 3600.0
    #: a haul longer than this is not one haul (the truck parked between shifts)
    haul_max_duration_s: float = 10 * 3600.0
    #: off-site stays of this dwell are plausible unloadings (tipping takes 3-30 min)
    dump_dwell_min_s: float = 180.0
    dump_dwell_max_s: float = 45 * 60.0
    #: a load-sensor drop counts as an unloading only if the truck then reads empty this share of the time
    #: until it loads again (a sensor that flaps for a few minutes does not unload a truck)
    load_drop_empty_share: float = 0.8
    #: an off-site stay this long before a silence is taken as the unloading (the truck went dark empty)
    dump_confident_dwell_s: float = 300.0
    #: speed used to bound where a silent truck could have been
    reach_speed_kmh: float = 50.0
    #: a silence is a possible unloading only if it lasted this much longer than driving straight between
    #: where the truck went dark and where it reappeared (at ``gap_explained_speed_kmh``, road factor 1.3):
    #: a truck silent on its way somewhere is not hiding a detour
    gap_unexplained_min_s: float = 480.0
    gap_explained_speed_kmh: float = 30.0
    # --- manifests ------------------------------------------------------------------------------
    #: gate-out scan vs. GPS departure from the site
    manifest_depart_tolerance_s: float = 90 * 60.0
    #: gate-in scan at the receiver vs. GPS unloading
    manifest_receive_tolerance_s: float = 60 * 60.0
    #: a manifest without any scan is issued at most this long before departure (night hauls are
    #: often booked in the afternoon)
    manifest_issue_lead_s: float = 16 * 3600.0
    # --- reports --------------------------------------------------------------------------------
    #: a truck standing within this distance of a report in its window is a candidate
    report_radius_m: float = 1000.0
    #: a lead this close to a report (and in its window) explains it
    report_lead_match_m: float = 400.0
    #: window looked at when a report gives none: this long before it was reported
    report_default_window_s: float = 24 * 3600.0
    # --- midnight -------------------------------------------------------------------------------
    #: hours of the previous day's batch read to stitch trips across midnight
    context_hours: float = 14.0
    #: an event still open this close to the end of the day's data is left to the next night
    open_event_margin_s: float = 15 * 60.0
    #: every vehicle carries at least this much of its track into the next night (sheets draw 2 h
    #: before an event; a report's window may reach back into the evening)
    min_tail_hours: float = 2.0
    #: the carried tail starts this long before the open haul's loading or the last stay (the stay
    #: detector's window and the merging of a gate queue with the loading need the minutes before)
    tail_margin_s: float = 3600.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


DEFAULT_PARAMS = Params()

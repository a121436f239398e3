"""Thresholds of the night run, with their units in their names.

One frozen dataclass so a run's behaviour is fully described by its ``Params``
(they are written to ``run.json``), a notebook can try other values with
``dataclasses.replace``, and no stage hides a magic number.

Every value here is a physical or administrative bound — how fast a muck truck
drives, how long unloading takes, how noisy a GPS fix is, how late a manifest
is entered — and its comment says which. None was fitted to a simulated world:
what the data must decide case by case (is this stop an unloading?) is left to
the evidence, or to the shipped unloading model (``wastetrack.unloading``).
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
    #: displacement two fixes of a standing truck show from GPS noise alone, discounted before the speed
    #: test: consumer GNSS in streets has 5-25 m 1-sigma error, so fixes of a parked truck commonly differ
    #: by up to ~2 sigma * sqrt(2) ~ 50 m. Without it a feed with a fix every 1-2 min turns every stop of a
    #: noisy terminal into "moving" (50 m in 90 s is 2 km/h, 100 m is 4 km/h)
    stay_gps_jitter_m: float = 50.0
    #: shortest stay kept: longer than a red light, shorter than the quickest unloading (~4 min)
    stay_min_duration_s: float = 150.0
    #: time between the fixes around a stay beyond what driving the distance at this speed takes is counted
    #: as standing (``dwell_s``): the slowest sustained speed of a truck on a road. A terminal reporting
    #: every 1-2 min shows a 4-minute stop as two fixes 90 s apart; the minutes before and after are idle
    stay_idle_speed_kmh: float = 20.0
    #: a silence longer than this splits stays (parked terminals report every 300 s with ACC off, so
    #: shorter silences are normal; a truck cannot drive off, unload and come back in 7 minutes)
    stay_silence_split_s: float = 420.0
    #: two stays this close in time and space are one (a truck shunting inside a site)
    stay_merge_gap_s: float = 180.0
    stay_merge_distance_m: float = 150.0
    #: a stay with a construction site's fence and a receiver's both this near is checked fix by fix for a
    #: move from one to the other (``geofence.place_breaks``): a few hundred metres of queue and lane
    stay_site_split_m: float = 1000.0
    #: a sensor reading this close before or after a stay still describes it (terminals report every
    #: 10-120 s while moving); after a longer silence the load may have gone during the silence
    sensor_neighbour_s: float = 120.0
    # --- geofence -------------------------------------------------------------------------------
    #: a stay within this distance of a fence counts as at the site (GPS drift in urban canyons and
    #: queues on the road outside the gate put a truck that is at the site 60-150 m off its fence)
    fence_tolerance_m: float = 150.0
    #: an off-fence unloading this close to the manifest's receiver, with its gate-in scan during the stay,
    #: is at that receiver: the receiver's own record outweighs a drifting GPS (walls, stockpiles and pits
    #: of a yard throw fixes a few hundred metres; a dumper's manifest is never scanned in)
    receiver_scan_distance_m: float = 500.0
    #: ... and the mirror at a construction site: an off-fence stop this close to the manifest's origin site,
    #: with its gate-out scan while the truck stood there, is a loading at that site
    #: (``reconcile.place_loadings_by_gate_out``)
    site_scan_distance_m: float = 500.0
    #: a gate-in scan this much before the stay started (or after it ended) still falls "in" it: the scan
    #: is taken at the gate, minutes before the truck stands still at the tipping face, and the clocks of
    #: the gate system and the terminal differ by minutes
    gate_scan_slack_s: float = 600.0
    #: ... and it is at that receiver too when the truck's own fixes put it inside the receiver's fence this
    #: many times within ``gate_scan_slack_s`` of the stay: it drove into the yard and its fixes at the
    #: tipping face drifted. One fix inside can be noise from the road along the fence; a dumper on the verge
    #: never drives in
    receiver_yard_min_fixes: int = 2
    # --- hauls ----------------------------------------------------------------------------------
    #: a construction-site visit shorter than this is not a loading (an excavator needs minutes)
    load_min_dwell_s: float = 300.0
    #: the part of a silence right after a loading visit that driving does not explain counts towards the
    #: loading's length (a dead zone in the bay), if the truck reappeared this far from the site; nearer,
    #: the silence may hide a dark trip out and back
    load_dark_away_m: float = 500.0
    #: stays at one construction site this close in time are one visit (queue, then loading)
    load_visit_merge_gap_s: float = 600.0
    #: a truck standing off-site this long is parked for the shift, not unloading or waiting: unloading
    #: takes under half an hour and waits at a gate or a truck park rarely an hour. The haul ends where
    #: the park began, and is decided once the park has lasted this long (not at the next evening's loading)
    shift_park_min_s: float = 2 * 3600.0
    #: ... and at the truck's own park (within ``features.SAME_PLACE_M`` of another of its shift parks) an
    #: hour: a driver waits for a gate at the gate and for a queue in it, not at his depot, and a truck that
    #: parked at home loaded to wait for a receiver to open is seen delivering after (``delivered_after_home``).
    #: A truck that went home for a break between shifts of an hour or two ends its haul there, not at a
    #: fuel stop after the break
    home_park_min_s: float = 3600.0
    #: silence while loaded long enough to unload; shorter drop-outs are normal and never leads
    track_gap_min_s: float = 720.0
    #: longer silences are a terminal switched off between shifts, not a haul gone dark (a haul ends there)
    track_gap_max_s: float = 4 * 3600.0
    #: off-site stays of this dwell are plausible unloadings for the rule-based fallback (tipping takes
    #: 3-30 min); the shipped model weighs the dwell itself
    dump_dwell_min_s: float = 180.0
    dump_dwell_max_s: float = 45 * 60.0
    #: a load-sensor drop counts as an unloading only if the truck then reads empty this share of the time
    #: until it loads again (a sensor that flaps for a few minutes does not unload a truck); by the same
    #: judgement a site visit after which a working sensor reads empty is no loading (``hauls.left_empty``)
    load_drop_empty_share: float = 0.8
    #: ... judged on the readings until the next loading, at most this long after the stay (a truck that
    #: unloaded is back at a site within a couple of hours; later readings describe its next load)
    load_drop_horizon_s: float = 2 * 3600.0
    #: ... and the fewest readings that judgement needs (one or two readings after a stay are noise)
    load_drop_min_readings: int = 3
    #: a receiver stay after which a working load sensor (one that reads empty at other times of the night)
    #: reads mostly loaded (``load_drop_empty_share``) over this much of the drive away, the body never
    #: lifted, is no unloading: the truck stood at that yard's gate or passed it and left with its load
    load_still_window_s: float = 600.0
    #: ... and only during a stay no longer than this (unloading takes under an hour: a day-long park
    #: across a sensor reset is no unloading)
    sensor_stay_max_s: float = 90 * 60.0
    #: an off-site stay this long before a silence is taken as the unloading by the rule-based fallback
    #: (the truck went dark empty)
    dump_confident_dwell_s: float = 300.0
    #: speed used to bound where a silent truck could have been
    reach_speed_kmh: float = 50.0
    #: a silence is a possible unloading only if it lasted this much longer than driving between where
    #: the truck went dark and where it reappeared (at ``gap_explained_speed_kmh`` along a road
    #: ``road_detour_factor`` times the straight line): a truck silent on its way somewhere is not hiding
    #: a detour
    gap_unexplained_min_s: float = 480.0
    gap_explained_speed_kmh: float = 30.0
    #: roads are longer than the straight line between two points (the detour index of road networks is
    #: 1.2-1.4)
    road_detour_factor: float = 1.3
    #: a sensorless unloading decision (which stop or silence, if any, was the unloading) is made when
    #: the model finds one more likely than not; below it the haul is left without an unloading
    unloading_min_probability: float = 0.5
    #: a silence that began or ended this close to an approved receiver's fence, long enough to unload,
    #: is a visit to that receiver with the terminal silent (pits and basement yards block GNSS/GPRS; a
    #: truck loses the signal on the receiver's access road, a minute or two from the gate)
    silent_receiver_distance_m: float = 1000.0
    #: ... or, farther out, one the truck went dark driving straight for — the receiver its manifest names
    #: within this angle of its course (a road's bends keep a destination kilometres away within about
    #: half a quadrant of the heading) — and could reach, unload at and leave in the silence: a dead zone
    #: on the way into the yard, its paperwork and its heading agreeing
    silent_receiver_course_deg: float = 45.0
    #: shortest unloading at a receiver: tipping a body takes at least a few minutes
    unload_min_s: float = 180.0
    # --- manifests ------------------------------------------------------------------------------
    #: gate-out scan vs. GPS departure from the site
    manifest_depart_tolerance_s: float = 90 * 60.0
    #: gate-in scan at the receiver vs. GPS unloading
    manifest_receive_tolerance_s: float = 60 * 60.0
    #: a manifest without any scan is issued at most this long before departure (night hauls are
    #: often booked in the afternoon)
    manifest_issue_lead_s: float = 16 * 3600.0
    #: ... and may be issued this long after the GPS departure (the driver opens it at the gate, the
    #: platform stamps it when the truck is already on the road)
    manifest_issue_after_depart_s: float = 30 * 60.0
    #: a manifest entered after the fact (补录) — issued after the truck left, without a gate-out scan —
    #: is still the haul's when it names the haul's site and (if known) its receiver and was entered
    #: within this long after the departure: late entries are made the same working day
    manifest_late_entry_s: float = 8 * 3600.0
    #: a pair whose manifest names another origin site costs as much as a gate scan this far off (a
    #: wrong site is possible — a truck moved between sites — but much less likely than a late scan)
    manifest_origin_mismatch_cost_s: float = 3600.0
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

    # --- the liaison loop (delivery, replies, escalation, credit; see lifecycle.py) ---------------------
    #: the liaison must acknowledge (签收) a delivered lead within this many working days
    receipt_due_workdays: int = 2
    #: and give a verdict (立案 or 不成立) within this many working days of the delivery
    verdict_due_workdays: int = 15
    #: a filed case must be closed (办结) within this many working days of its filing
    closure_due_workdays: int = 60
    #: a county asked for entrusted evidence collection (委托调查取证) replies within this many working days
    assist_due_workdays: int = 10
    #: an overdue lead climbs one rung (reminder → copy to the city → the province) per this many working days
    escalation_step_workdays: int = 2
    #: public holidays (YYYY-MM-DD) that are not working days; China's are set each year (with swapped
    #: weekends, 调休): none are built in, so without them a deadline over a holiday falls early, never late
    holidays: tuple[str, ...] = ()
    #: weekend days that are working days (调休上班), YYYY-MM-DD
    extra_workdays: tuple[str, ...] = ()
    #: carrier credit (信用联合惩戒): every carrier starts each rolling window with this many points
    credit_full_points: float = 100.0
    #: points deducted per confirmed violation, by lead kind (a cross-border one costs the extra as well)
    credit_points_illegal_dump: float = 20.0
    credit_points_diverted: float = 10.0
    credit_points_unmanifested: float = 10.0
    credit_points_track_gap: float = 5.0
    credit_points_report_trace: float = 20.0
    credit_points_cross_border_extra: float = 5.0
    #: violations count over this many months up to the end of the listed month
    credit_window_months: int = 12
    #: 首违不罚: a carrier's first confirmed violation in the window, of one of these (minor) kinds and closed
    #: without a fine, deducts nothing and flags the carrier
    first_violation_exempt_kinds: tuple[str, ...] = ("track_gap", "unmanifested")
    #: a score at or below this puts the carrier on the blacklist (失信名单); at or below the next, watched
    credit_blacklist_points: float = 60.0
    credit_watch_points: float = 80.0

    # --- track-gap regions, report tracing, midnight (gaps.py, spacetime.py, trace.py, midnight.py) ----------
    #: the truck's driving speed is measured on its own fixes this long before it went dark and after it
    #: came back (the roads it was on; red lights count, stays do not)
    gap_speed_window_s: float = 15 * 60.0
    #: ... from at least this much driving; with less, ``gap_cruise_speed_kmh`` (a loaded muck truck's
    #: average on urban and county roads, red lights included)
    gap_speed_min_driving_s: float = 120.0
    gap_cruise_speed_kmh: float = 35.0
    #: slower than this a truck is not driving anywhere (a measured speed is never taken below it)
    gap_speed_min_kmh: float = 10.0
    #: the truck's course into and out of a silence is its bearing over this distance: longer than GPS
    #: noise and a junction's turn, shorter than the road to anywhere else
    gap_course_base_m: float = 400.0
    #: how firmly a loaded truck keeps its course towards where it is going (von Mises concentration: 2 puts
    #: about two thirds of the weight within 45 degrees of it; roads bend, trucks do not turn back)
    gap_course_kappa: float = 2.0
    #: unloading in a silence takes minutes: tipping 2-5 min plus reversing onto the spot and clearing the
    #: body; the most common total and its spread (log-normal sigma) ...
    gap_unload_typical_s: float = 10 * 60.0
    gap_unload_spread: float = 0.5
    #: ... and the share of silences that are just that (the rest: a truck that also waited, of any length)
    gap_unload_typical_share: float = 0.7
    #: a place that needs faster driving than the truck's measured speed is that much less likely: speeds on
    #: one road vary by about a quarter
    gap_speed_tolerance: float = 0.25
    #: the weight of unloading inside a construction site or an approved receiver's fence (there it is a
    #: loading or a legal unloading, not a track gap's dump)
    gap_fence_weight: float = 0.05
    #: the lead's point maximises the chance that the load lies within this distance of it: the area an
    #: officer searches on the ground from one point
    gap_place_radius_m: float = 250.0
    #: how much more likely dumping is at a spot where it was found before (earlier leads and reports:
    #: dumpers return to the same field) ...
    gap_known_spot_weight: float = 10.0
    #: ... and where waste was reported with a window overlapping the silence (a fresh pile where the
    #: truck could have been, when it was dark). The odds that pile is this truck's load: a dumped load is
    #: reported about half the time, while another pile reported within a report's place error (150 m) in
    #: those hours is a chance of well under one in a hundred where tens of reports a night fall on
    #: thousands of km² — odds in the hundreds, not the tens (at 50 a pile 6 km out on an out-and-back
    #: silence lost to where the truck went dark; at 1000 a decoy beside a road outweighed a truck seen
    #: going dark on its spot)
    gap_report_spot_weight: float = 200.0
    #: a truck that went dark standing and came back standing at the same place most likely never left: that
    #: place weighs as much as every drive the silence allows together (odds 1:1; a red light passed on the
    #: way out and again on the way back is the other way to see it)
    gap_stood_weight: float = 1.0
    #: ... and a loaded truck that went dark standing or crawling most likely unloaded right there: that place
    #: weighs as much, alone. Crawling is judged over the minutes around the silence: slower than
    #: ``gap_crawl_max_kmh`` over ``gap_crawl_window_s`` a loaded truck is finding and backing onto a spot,
    #: not on its way anywhere (moving traffic averages more, even in town; GPS noise of tens of metres over
    #: two minutes reads as 1-3 km/h)
    gap_crawl_window_s: float = 120.0
    gap_crawl_max_kmh: float = 8.0
    #: ... and a truck that went dark while still driving: drivers switch off either early on the way (the
    #: whole detour dark: the spot lies anywhere the drive allows) or as they reach the spot (it lies where
    #: the truck went dark); the track cannot tell which. The place where it went dark weighs this much
    #: against every drive the silence allows (0: the drives alone): prior odds of 1:4, enough to outweigh
    #: any 250 m of the spread-out drives (they hold a few percent each), not a pile reported there and
    #: then (``gap_report_spot_weight``), which is direct evidence
    gap_dark_here_weight: float = 0.25
    #: ... at a point this far ahead on its course, not at the dark fix itself: the spot lies ahead of where a
    #: truck still driving switched off, never behind it. Less than ``gap_place_radius_m`` ahead, so the disk
    #: still holds the dark fix (a driver who switched off on the spot) and twice the road ahead of it
    gap_dark_ahead_m: float = 200.0
    #: a truck that went dark crawling this near the fence of the site it had just loaded at was leaving it
    #: (gate, wheel wash, the convoy in the site's access lanes), not arriving at a spot: nobody tips in
    #: sight of the site they loaded at, so there the crawl says nothing about where it unloaded (as for a
    #: receiver, ``silent_receiver_distance_m``: a minute or two of access road)
    gap_leaving_site_m: float = 1000.0
    #: where a report says waste lies vs where it lies: a phone's GPS or a geocoded address, 50-150 m
    report_place_sigma_m: float = 150.0
    #: a truck that dumped stood within this of the report's point (two of its sigmas): its fixes within it
    #: are "at the spot"
    report_near_m: float = 300.0
    #: slower than this near the spot a truck is manoeuvring or tipping, not passing through
    report_slow_speed_kmh: float = 10.0
    #: a truck at road speed crosses the ``report_near_m`` disk in under a minute and a red light holds it up to
    #: two or three; one that spent as long in it as tipping takes stopped there (a stay too short or too
    #: sparsely reported to be detected as one)
    report_linger_s: float = 180.0
    #: a truck is named for a report only when its evidence (``trace.score_candidates``: log-odds terms, 0 =
    #: as likely as not) reaches this; below it the report stays untraced ...
    report_min_score: float = 0.5
    #: ... and once the first is named, others are listed up to three while at least this plausible
    report_list_min_score: float = -0.5
    #: ... but no truck is named where this many trucks each had evidence enough to be named and within
    #: ``report_crowd_margin`` (log-odds) of the best: three trucks stopping or lingering at one spot in one
    #: window is a spot where trucks stop (a lay-by, a queue, a yard gate), and stopping there singles out
    #: none of them. The report stays untraced with all of them listed (an officer still sees who was there)
    report_crowd_trucks: int = 3
    report_crowd_margin: float = 1.0
    #: reports arrive up to three days late: the store's earlier nights are searched this far back, and a
    #: report without a window may describe a pile that old
    report_history_days: int = 3
    #: an event whose truck was still within this distance of it when the day's data ended (within
    #: ``open_event_margin_s`` of midnight) may still have been going on: the next night decides it
    #: (a receiver's yard, the second spot of a split dump)
    open_event_radius_m: float = 1000.0
    #: ... unless its last fix was at this speed or more: it was on the road, driving off (a yard, or the next
    #: spot of a split dump tens of metres on, is reached at a crawl; GPS jitter of a standing truck is
    #: well under it)
    open_event_leaving_kmh: float = 30.0

    def __post_init__(self) -> None:
        # run.json / plan.json round-trip tuples as JSON lists: keep them tuples (the dataclass stays hashable)
        for name in ("holidays", "extra_workdays", "first_violation_exempt_kinds"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


DEFAULT_PARAMS = Params()

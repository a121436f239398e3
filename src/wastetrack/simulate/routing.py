"""The contract's routing rule, used to write the truth's expected ``primary_liaison_id``.

A county's active primary; else its active backup; else the city's (same rule);
else the province's. Implemented independently of the pipeline on purpose: the
evaluator checks the pipeline against this reading of the contract.
"""

from __future__ import annotations

import pandas as pd


def _pick(liaisons: pd.DataFrame, level: str, adcode: str) -> str:
    rows = liaisons[
        (liaisons["level"] == level) & (liaisons["adcode"] == adcode) & (liaisons["active"] == "true")
    ]
    for role in ("primary", "backup"):
        hit = rows[rows["role"] == role]
        if len(hit):
            return str(hit["liaison_id"].sort_values().iloc[0])
    return ""


def route(county_adcode: str, liaisons: pd.DataFrame, county_city: dict[str, str]) -> str:
    """Liaison id that must act on an event in ``county_adcode`` (empty if nobody at any level)."""
    if not county_adcode:
        return ""
    city = county_city.get(county_adcode, county_adcode[:4] + "00")
    province = county_adcode[:2] + "0000"
    return (
        _pick(liaisons, "county", county_adcode)
        or _pick(liaisons, "city", city)
        or _pick(liaisons, "province", province)
    )

"""Chinese labels for the codes a lead sheet shows, and the tolerant formatting of its values.

The pipeline speaks in contract codes (``illegal_dump``, ``muck``, ``in_transit``);
a liaison officer opening a case needs the words of the regulations and of the
platforms they already use (偷倒乱倒, 工程渣土, 运输中). Keeping every label in one
table means a wording change is one edit, and an unknown code is shown as the
code itself (``label``) instead of raising: a new kind upstream must never stop
the night from producing sheets. The second half of the module reads lead
values however they arrive (numpy arrays, JSON text, pd.NA) and formats times,
durations and distances the way a Chinese case file writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd

#: Lead kinds (models.LEAD_KINDS).
KIND_LABELS: dict[str, str] = {
    "illegal_dump": "偷倒乱倒",
    "diverted": "未按联单消纳（改变去向）",
    "unmanifested": "无联单运输",
    "track_gap": "轨迹中断",
    "report_trace": "举报线索溯源",
}

#: One line per kind: what the kind means, printed under the title so the reader knows the allegation.
KIND_EXPLANATIONS: dict[str, str] = {
    "illegal_dump": "车辆在无消纳资质的地点卸载建筑垃圾。",
    "diverted": "车辆未按电子联单申报的消纳场所卸载，或卸载场所无权接收该类垃圾、核准已失效。",
    "unmanifested": "车辆从工地运出建筑垃圾并在消纳场所卸载，但无有效电子联单。",
    "track_gap": "车辆重车状态下定位终端长时间中断，恢复后为空车，期间足以完成卸载。",
    "report_trace": "根据偷倒乱倒举报的时间和地点，比对车辆轨迹得出的嫌疑车辆。",
}

#: The five waste kinds of CJJ/T 134-2019 (models.WASTE_TYPES).
WASTE_TYPE_LABELS: dict[str, str] = {
    "muck": "工程渣土",
    "mud": "工程泥浆",
    "construction": "工程垃圾",
    "demolition": "拆除垃圾",
    "decoration": "装修垃圾",
}

#: Site kinds of sites.geojson.
SITE_KIND_LABELS: dict[str, str] = {
    "construction": "工地",
    "disposal": "消纳场",
    "recycling": "资源化利用厂",
    "transfer": "中转站",
}

#: Manifest statuses (models.MANIFEST_STATUSES).
MANIFEST_STATUS_LABELS: dict[str, str] = {
    "issued": "已开单",
    "in_transit": "运输中",
    "received": "已接收",
    "cancelled": "已作废",
}

#: Liaison feedback statuses (models.FEEDBACK_STATUSES), in the order a case goes through them.
FEEDBACK_STATUS_LABELS: dict[str, str] = {
    "received": "已签收",
    "case_filed": "已立案",
    "not_established": "不成立",
    "closed": "已办结",
}

#: What each reply status asks the liaison to add.
FEEDBACK_STATUS_HINTS: dict[str, str] = {
    "received": "收到线索后 1 个工作日内回复",
    "case_filed": "请填写立案编号 case_no",
    "not_established": "请在 note 中写明不成立的理由",
    "closed": "请填写处罚金额 penalty_cny（元），无处罚填 0",
}

#: Dumping report sources (models.REPORT_SOURCES).
REPORT_SOURCE_LABELS: dict[str, str] = {
    "patrol": "巡查发现",
    "hotline": "热线举报",
    "camera": "视频监控",
    "drone": "无人机巡查",
    "other": "其他",
}

#: Liaison levels of liaisons.csv.
LIAISON_LEVEL_LABELS: dict[str, str] = {
    "province": "省级",
    "city": "市级",
    "county": "县级",
    "town": "街镇",
}

LIAISON_ROLE_LABELS: dict[str, str] = {"primary": "主岗", "backup": "备岗"}

#: Names of score components the detectors may report in ``evidence.score_parts``.
#: Unknown names are shown as they come, so a detector can add a part without touching this table.
SCORE_PART_LABELS: dict[str, str] = {
    "base": "基础分",
    "tipping": "举升信号",
    "dwell": "停留时长",
    "load_change": "载重变化（重车→空车）",
    "loaded_change": "载重变化（重车→空车）",
    "unloaded": "载重变化（重车→空车）",
    "no_receiver": "停留点非核准消纳场所",
    "receiver_distance": "距核准消纳场所距离",
    "distance": "距离",
    "report": "举报印证",
    "report_match": "举报印证",
    "reports": "举报印证",
    "gap": "中断时长",
    "gap_duration": "中断时长",
    "reach": "中断期间可达范围",
    "returned_empty": "恢复后为空车",
    "manifest": "联单比对",
    "manifest_mismatch": "联单去向不符",
    "accepts": "消纳场所不接收该类垃圾",
    "permit": "消纳场所核准失效",
    "origin": "来源工地可追溯",
    "night": "夜间作业",
    "repeat": "多次出现",
    "sensor": "传感器完整度",
    "rank": "候选排序",
    "uniqueness": "候选唯一性",
    "time_overlap": "时间吻合",
    # the terms of wastetrack.scoring
    "tipping_sensor": "举升传感器触发",
    "load_sensor_drop": "载重传感器重车→空车",
    "unloading_dwell": "停留时长符合卸载",
    "far_from_receivers": "远离核准消纳场所",
    "stayed_at_receiver": "在消纳场所停留",
    "silence_length": "定位中断时长",
    "empty_after_silence": "恢复后为空车",
    "closeness": "距举报点近",
    "stood_there": "在举报点停留",
    "few_candidates": "候选车辆少",
    "dumping_report": "有举报印证",
    # the calibrated score (wastetrack.scoring, docs/model_card.md): one base term per kind of evidence
    "unloading_model": "卸载判别模型概率（已校准）",
    "trace_evidence": "举报溯源证据评分（已校准）",
    "evidence_sensor_tipping": "举升传感器（该类线索历史准确率）",
    "evidence_sensor_load": "载重传感器（该类线索历史准确率）",
    "evidence_receiver": "进入消纳场所（该类线索历史准确率）",
    "evidence_receiver_scan": "消纳场所进场扫码（该类线索历史准确率）",
    "evidence_receiver_track": "轨迹进入消纳场所围栏（该类线索历史准确率）",
    "evidence_receiver_silent": "消纳场所附近定位中断（该类线索历史准确率）",
    "evidence_dwell": "重车停留（该类线索历史准确率）",
    "evidence_gap": "定位中断（该类线索历史准确率）",
    "evidence_stood": "在举报点停留（该类线索历史准确率）",
    "evidence_passed": "途经举报点（该类线索历史准确率）",
    "evidence_none": "基础概率",
}

#: How the unloading was recognised (``evidence.unload_evidence``).
UNLOAD_EVIDENCE_LABELS: dict[str, str] = {
    "sensor": "车载传感器（举升/载重）",
    "receiver": "进入消纳场所围栏",
    "dwell": "重车停留时长",
    "gap": "定位中断推算",
    "receiver_scan": "消纳场所进场扫码（GPS 漂移至围栏外）",
    "receiver_track": "轨迹曾进入消纳场所围栏（卸载点 GPS 漂移至围栏外）",
    "receiver_silent": "在消纳场所附近定位中断，进场扫码或往返时间可解释",
}

#: Why a receiving site may not take the load (``evidence.diverted_because`` / ``receiver_problems``).
RECEIVER_PROBLEM_LABELS: dict[str, str] = {
    "wrong_receiver": "卸载场所与联单申报去向不符",
    "not_accepted": "该场所不接收此类垃圾",
    "permit_invalid": "该场所处置核准不在有效期内",
    "not_a_receiver": "卸载地点不是核准消纳场所",
}

#: Keys of the ``evidence`` dict, for the raw evidence table.
EVIDENCE_LABELS: dict[str, str] = {
    "dwell_min": "停留时长（分钟）",
    "tipping": "举升传感器",
    "loaded_before": "停留前载重状态",
    "loaded_after": "停留后载重状态",
    "unload_site_id": "卸载场所",
    "nearest_receiver_id": "最近的核准消纳场所",
    "nearest_receiver_m": "距最近核准消纳场所（米）",
    "manifest_dest_site_id": "联单申报去向",
    "waste_type": "垃圾类别",
    "volume_m3": "方量（立方米）",
    "depart": "离开工地时间",
    "origin_stay_end": "工地装载结束时间",
    "gap_min": "定位中断时长（分钟）",
    "gap_start": "定位中断开始",
    "gap_end": "定位中断结束",
    "max_reach_km": "中断期间最远可达（公里）",
    "report_distance_m": "举报点距离（米）",
    "reason": "线索理由",
    "haul_id": "运次编号",
    "unload_evidence": "卸载判定依据",
    "unload_stay_id": "停留记录编号",
    "manifest_status": "联单状态",
    "diverted_because": "改变去向原因",
    "receiver_problems": "消纳场所问题",
    "manifest_carrier_code_invalid": "联单运输企业信用代码校验位错误",
    "report_id": "举报编号",
    "top_distance_m": "首选车辆距举报点（米）",
    "top_is_stay": "首选车辆在举报点停留",
    "n_candidates": "候选车辆数",
    "in_haul": "举报时段内首选车辆处于运次途中",
}


def label(table: Mapping[str, str], code: object, empty: str = "—") -> str:
    """Chinese label of ``code`` in ``table``; the code itself when unknown, ``empty`` when missing.

    Unknown codes stay visible (never silently dropped) so a reader can still
    report what the sheet said.
    """
    if code is None:
        return empty
    text = str(code).strip()
    if not text or text.lower() in ("nan", "none", "<na>"):
        return empty
    return table.get(text, table.get(text.lower(), text))


def sensor_label(value: object, true_text: str, false_text: str, unknown: str = "未知（无传感器数据）") -> str:
    """Three-state sensor reading: many trucks have no load or body-lift sensor, and "unknown" is not "no"."""
    if value is None or (isinstance(value, float) and value != value):
        return unknown
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("true", "1", "yes"):
            return true_text
        if v in ("false", "0", "no"):
            return false_text
        return unknown
    try:
        return true_text if bool(value) else false_text
    except (TypeError, ValueError):
        return unknown


def score_level(score: float | None) -> str:
    """高/中/低 so a reader can triage without reading the number."""
    if score is None or score != score:
        return "未评分"
    if score >= 0.8:
        return "高"
    if score >= 0.5:
        return "中"
    return "低"


# --- tolerant reading and Chinese formatting of the values a sheet shows -----------------------------
# Leads arrive from a DataFrame, from parquet (lists become numpy arrays) or from JSON (timestamps become
# strings, dicts become JSON text): the sheet must show what there is and never fail on a missing value.

from wastetrack import TIMEZONE  # noqa: E402  (re-exported: sheets read it from here)


def is_missing(value: object) -> bool:
    """None, NaN, NaT, pd.NA and blank strings are all "not known"."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip() or value.strip().lower() in ("nan", "none", "nat", "<na>", "null")
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays: present
        return False


def text(value: object, empty: str = "") -> str:
    """str() for display; missing values become ``empty``."""
    return empty if is_missing(value) else str(value).strip()


def as_float(value: object) -> float | None:
    if is_missing(value):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if out != out or out in (float("inf"), float("-inf")) else out


def as_bool(value: object) -> bool | None:
    """True/False from bools, 0/1 and "true"/"false" text; None when missing (pd.NA must not raise)."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        v = value.strip().lower()
        return True if v in ("true", "1", "yes", "t") else False if v in ("false", "0", "no", "f") else None
    try:
        return bool(value)
    except (TypeError, ValueError):
        return None


def as_list(value: object) -> list:
    """Lists from lists, tuples, numpy arrays, JSON text or a single id; [] when missing."""
    if value is None:
        return []
    if isinstance(value, str):
        s = value.strip()
        if not s or is_missing(s):
            return []
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return [v for v in parsed if not is_missing(v)]
        return [s]
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list | tuple | np.ndarray | pd.Series | pd.Index):
        return [v for v in list(value) if isinstance(v, Mapping) or not is_missing(v)]
    return [] if is_missing(value) else [value]


def as_dict(value: object) -> dict:
    """The evidence dict, also when it arrives as JSON text; {} when missing or unreadable."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def as_local_ts(value: object) -> pd.Timestamp | None:
    """A tz-aware Asia/Shanghai timestamp; naive values are local time (the contract's rule).

    Timestamps already in local time come back as they are, and text (ISO times
    in the evidence) is parsed once per distinct string: a sheet reads the same
    few times many times over.
    """
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            return None
        tz = value.tzinfo
        if tz is None:
            return value.tz_localize(TIMEZONE)
        return value if getattr(tz, "key", None) == TIMEZONE else value.tz_convert(TIMEZONE)
    if isinstance(value, str):
        return _parse_local(value.strip())
    if is_missing(value):
        return None
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT or pd.isna(ts):
        return None
    return ts.tz_localize(TIMEZONE) if ts.tzinfo is None else ts.tz_convert(TIMEZONE)


@lru_cache(maxsize=8192)
def _parse_local(value: str) -> pd.Timestamp | None:
    if is_missing(value):
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize(TIMEZONE) if ts.tzinfo is None else ts.tz_convert(TIMEZONE)


def fmt_datetime(ts: pd.Timestamp | None, seconds: bool = False) -> str:
    """2026-11-20 02:14 (local time, the date always shown)."""
    if ts is None:
        return "—"
    out = f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d} {ts.hour:02d}:{ts.minute:02d}"  # strftime is 10× slower
    return f"{out}:{ts.second:02d}" if seconds else out


def fmt_clock(ts: pd.Timestamp | None, ref: pd.Timestamp | None = None, seconds: bool = False) -> str:
    """02:14 when on the same local day as ``ref``, else 11月19日 23:50: night shifts cross midnight."""
    if ts is None:
        return "—"
    clock = f"{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}" if seconds else f"{ts.hour:02d}:{ts.minute:02d}"
    if ref is not None and (ts.year, ts.month, ts.day) == (ref.year, ref.month, ref.day):
        return clock
    return f"{ts.month}月{ts.day}日 {clock}"


def fmt_minutes(minutes: float | None) -> str:
    """9 分钟 / 1 小时 25 分钟."""
    if minutes is None:
        return "—"
    m = round(minutes)
    if m < 60:
        return f"{minutes:.0f} 分钟" if minutes >= 1 or minutes == 0 else f"{minutes * 60:.0f} 秒"
    h, rest = divmod(m, 60)
    return f"{h} 小时" + (f" {rest} 分钟" if rest else "")


def fmt_span(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """The 时间 line: both dates written out when the event crosses midnight, plus the duration."""
    if start is None and end is None:
        return "时间不详"
    if start is None or end is None:
        one = start or end
        assert one is not None
        return f"{one.year}年{one.month}月{one.day}日 {one.strftime('%H:%M')}"
    head = f"{start.year}年{start.month}月{start.day}日 {start.strftime('%H:%M')}"
    minutes = (end - start).total_seconds() / 60.0
    if end.date() == start.date():
        return f"{head} 至 {end.strftime('%H:%M')}（历时 {fmt_minutes(minutes)}）"
    tail = f"{end.year}年{end.month}月{end.day}日 {end.strftime('%H:%M')}"
    return f"{head} 至 {tail}（跨日，历时 {fmt_minutes(minutes)}）"


def fmt_distance(metres: float | None) -> str:
    """850 米 / 2.3 公里."""
    if metres is None:
        return "—"
    if metres < 1000:
        return f"{metres:.0f} 米"
    return f"{metres / 1000:.1f} 公里" if metres < 100_000 else f"{metres / 1000:.0f} 公里"


def fmt_number(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    s = f"{value:.{digits}f}"
    if digits and "." in s:
        s = s.rstrip("0").rstrip(".")
    return f"{s} {unit}".strip()


def fmt_span_short(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """11月20日 10:31–10:42, or 11月19日 23:40–11月20日 00:35 across midnight (index tables)."""
    if start is None or end is None:
        one = start or end
        return "—" if one is None else f"{one.month}月{one.day}日 {one.strftime('%H:%M')}"
    head = f"{start.month}月{start.day}日 {start.strftime('%H:%M')}"
    if end.date() == start.date():
        return f"{head}–{end.strftime('%H:%M')}"
    return f"{head}–{end.month}月{end.day}日 {end.strftime('%H:%M')}"


#: Events of a lead's handling record (``SheetContext.history``), in the words of the liaison network.
HISTORY_EVENT_LABELS: dict[str, str] = {
    "delivered": "已送达联络员",
    "received": "已签收",
    "case_filed": "已立案",
    "escalated": "已提级督办",
    "reminded": "已催办",
    "transferred": "已移送",
    "assist_requested": "已委托调查取证",
    "assist_replied": "协查已回复",
    "not_established": "不成立",
    "closed": "已办结",
}

_CN_DIGITS = "零一二三四五六七八九"


def cn_numeral(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 21 → 二十一: section numbers of a Chinese document."""
    if n < 0:
        return str(n)
    if n < 10:
        return _CN_DIGITS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + ("" if ones == 0 else _CN_DIGITS[ones])
    return str(n)

"""Lead sheets (线索单) for liaison officers: self-contained Chinese HTML pages with an inline SVG map.

``write_lead_pages`` writes the pages of any subset of a night's leads (one
process per chunk if need be), ``write_index_pages`` writes ``index.html`` and
one ``liaison-<id>.html`` per liaison, and ``write_sheets`` does both.
``build_sheet`` returns the model of one page (facts with their claims, maps,
key track points) and ``render_sheet`` / ``render_map_svg`` render a single
lead for previews and tests. The layout is in ``templates/`` (Jinja2).
"""

from wastetrack.sheets.context import SheetContext, boundary_place_namer
from wastetrack.sheets.facts import Fact, lead_facts
from wastetrack.sheets.render import (
    SheetModel,
    build_sheet,
    key_track_points,
    liaison_assignments,
    render_index,
    render_liaison_index,
    render_sheet,
    sheet_filename,
    write_index_pages,
    write_lead_pages,
    write_sheets,
)
from wastetrack.sheets.svgmap import render_map_svg

__all__ = [
    "Fact",
    "SheetContext",
    "SheetModel",
    "boundary_place_namer",
    "build_sheet",
    "key_track_points",
    "lead_facts",
    "liaison_assignments",
    "render_index",
    "render_liaison_index",
    "render_map_svg",
    "render_sheet",
    "sheet_filename",
    "write_index_pages",
    "write_lead_pages",
    "write_sheets",
]

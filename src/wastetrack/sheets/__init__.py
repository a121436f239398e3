"""Lead sheets (线索单) for liaison officers: self-contained Chinese HTML pages with an inline SVG map.

``write_sheets`` is the stage's entry point (one page per lead, ``index.html``
and one ``liaison-<id>.html`` per liaison); ``render_sheet`` and
``render_map_svg`` render a single lead for previews and tests.
"""

from wastetrack.sheets.render import (
    SheetContext,
    boundary_place_namer,
    key_track_points,
    lead_facts,
    liaison_assignments,
    render_index,
    render_liaison_index,
    render_sheet,
    sheet_filename,
    write_sheets,
)
from wastetrack.sheets.svgmap import render_map_svg

__all__ = [
    "SheetContext",
    "boundary_place_namer",
    "key_track_points",
    "lead_facts",
    "liaison_assignments",
    "render_index",
    "render_liaison_index",
    "render_map_svg",
    "render_sheet",
    "sheet_filename",
    "write_sheets",
]

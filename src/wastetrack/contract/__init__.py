"""The data contract at the edge of the night: read and validate the landing directory.

Everything the pipeline reads passes through here and leaves as the typed
frames of ``wastetrack.models`` (WGS-84, tz-aware Asia/Shanghai, normalised
plates) — or as a quarantined row with its reason, or as a ``ContractError``
naming the file when a whole file or batch is unusable. Stages downstream never
re-check formats.

    inputs = read_night(landing, "2026-11-20")       # BatchError if the batch is not as declared
    inputs.gps, inputs.manifests, inputs.reference.sites
    inputs.quarantine.write(out / "2026-11-20")      # OUT/<date>/quarantine/*.csv
"""

from wastetrack.contract.batch import Batch, BatchError, ContractError, read_batch
from wastetrack.contract.columns import credit_code_valid, normalise_plate, plate_valid
from wastetrack.contract.quarantine import Quarantine
from wastetrack.contract.readers import NightInputs, read_context, read_night
from wastetrack.contract.reference import Reference, read_reference
from wastetrack.contract.tables import FileCount

__all__ = [
    "Batch",
    "BatchError",
    "ContractError",
    "FileCount",
    "NightInputs",
    "Quarantine",
    "Reference",
    "credit_code_valid",
    "normalise_plate",
    "plate_valid",
    "read_batch",
    "read_context",
    "read_night",
    "read_reference",
]

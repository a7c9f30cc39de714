"""pandas forms of the audits (imported lazily: pandas costs time at start-up)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ..records import ModelAudit


def params_frame(audit: ModelAudit) -> pd.DataFrame:
    """One row per module path, one column per :class:`~archaudit.walker.ModuleRecord` field.

    ``status`` holds the plain string (``"formula"``, ``"zero"``, ``"unsupported"``); ``shared`` the local
    parameter names shared with other places, joined by commas.
    """
    import pandas as pd

    from ..records import ModuleRecord

    rows = []
    for record in audit.records:
        row = asdict(record)
        row["status"] = record.status.value
        row["shared"] = ",".join(record.shared)
        rows.append(row)
    columns = [f.name for f in fields(ModuleRecord)]
    return pd.DataFrame(rows, columns=columns)

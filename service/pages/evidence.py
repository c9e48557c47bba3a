"""Evidence files as the maker's and the operator's pages show them: each with its design record."""

from __future__ import annotations

from typing import Any

from campaigns.transparency.models import DesignRecord
from service.i18n import gettext as _


def evidence_kind_labels() -> dict[str, str]:
    return {
        "bom": _("Bill of materials"),
        "factory_quote": _("Factory quote"),
        "certification_plan": _("Certification plan"),
        "prototype_photo": _("Prototype photo"),
        "cad": _("CAD"),
        "schematic": _("Schematic"),
        "firmware": _("Firmware"),
        "other": _("Other"),
    }


def evidence_view(records: list[DesignRecord]) -> list[dict[str, Any]]:
    labels = evidence_kind_labels()
    return [
        {
            "index": record.id,
            "file_name": record.file_name,
            "kind": labels.get(record.kind, record.kind),
            "size_bytes": record.size_bytes,
            "sha256": record.sha256,
            "recorded_at": record.recorded_at,
            "record_url": f"/api/v1/design-records/{record.id}",
            "download_url": f"/api/v1/campaigns/{record.campaign_id}/evidence/{record.id}",
        }
        for record in records
    ]


# The vetting checklist's items (campaigns.campaign_schemas.CHECKLIST_ITEMS) and the kind of file that evidences each.
KIND_OF_CHECKLIST_ITEM = {
    "prototype": "prototype_photo",
    "bill_of_materials": "bom",
    "manufacturing_quote": "factory_quote",
    "certifications": "certification_plan",
}


def evidence_by_checklist_item(records: list[DesignRecord]) -> dict[str, list[dict[str, Any]]]:
    """The files to show beside each checklist item of the operator's review."""
    return {
        item: evidence_view([record for record in records if record.kind == kind])
        for item, kind in KIND_OF_CHECKLIST_ITEM.items()
    }

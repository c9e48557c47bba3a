"""A delivery record (fulfillment/delivery_record.py) in the reader's language: the short line the campaign, maker
and space pages show, and one campaign's outcome."""

from __future__ import annotations

from collections import Counter

from fulfillment.delivery_record import CampaignDelivery, DeliveryRecord
from service.i18n import gettext, ngettext


def _by_months(months: list[int]) -> list[tuple[int, int]]:
    """(months, campaigns) for each distinct month count, smallest first."""
    return sorted(Counter(months).items())


def record_parts(record: DeliveryRecord) -> list[str]:
    """'2 funded', '1 delivered on time', '1 late by 2 months', ...: only the parts that are not zero."""
    if record.campaigns_funded == 0:
        return [gettext("no funded campaign yet")]
    parts = [ngettext("%(num)d funded", "%(num)d funded", record.campaigns_funded) % {"num": record.campaigns_funded}]
    if record.delivered_on_time:
        parts.append(gettext("%(num)d delivered on time") % {"num": record.delivered_on_time})
    for months, campaigns in _by_months(record.months_late):
        parts.append(
            ngettext("%(count)d late by %(num)d month", "%(count)d late by %(num)d months", months)
            % {"count": campaigns, "num": months}
        )
    if record.not_yet_due:
        parts.append(gettext("%(num)d not yet due") % {"num": record.not_yet_due})
    for months, campaigns in _by_months(record.months_overdue):
        parts.append(
            ngettext("%(count)d overdue by %(num)d month", "%(count)d overdue by %(num)d months", months)
            % {"count": campaigns, "num": months}
        )
    if record.never_delivered:
        parts.append(gettext("%(num)d never delivered (suspended)") % {"num": record.never_delivered})
    return parts


def outcome_words(delivery: CampaignDelivery) -> str:
    """One funded campaign's outcome: 'Delivered on time', 'Overdue by 3 months', ..."""
    months = delivery.months
    if delivery.outcome == "on_time":
        return gettext("Delivered on time")
    if delivery.outcome == "late":
        return ngettext("Delivered %(num)d month late", "Delivered %(num)d months late", months) % {"num": months}
    if delivery.outcome == "not_yet_due":
        return gettext("Delivery not yet due")
    if delivery.outcome == "overdue":
        return ngettext("Delivery overdue by %(num)d month", "Delivery overdue by %(num)d months", months) % {
            "num": months
        }
    return gettext("Never delivered (suspended)")

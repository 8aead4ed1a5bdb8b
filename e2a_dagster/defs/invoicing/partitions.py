"""The daily billing partitions. Key ``D`` = each tenant's own local day D (lib/invoicing/billing_periods.py)."""

import dagster as dg

from e2a_dagster.lib.invoicing.billing_periods import first_billing_day


def billing_days() -> dg.DailyPartitionsDefinition:
    """The partitions from ``E2A_BILLING_START`` (default 2025-01-01), read when the code location loads the
    billable-activity asset (defs/invoicing/billable_activity.py ``defs``), never at import. They are part of
    the asset's definition, which exists before any resource, so the value comes from the code location's
    environment, not from the settings resource (``e2a dev`` passes its own through, lib/core/settings.py
    child_env).

    end_offset=1: today's key exists as soon as the UTC day starts, so a 02:00 run east of UTC (where the previous
    local day is today in UTC) finds its partition."""
    return dg.DailyPartitionsDefinition(start_date=first_billing_day().isoformat(), timezone="UTC", end_offset=1)

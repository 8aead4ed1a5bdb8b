"""The daily billing partitions. Key ``D`` = each tenant's own local day D (lib/invoicing/billing_periods.py)."""

import dagster as dg

from e2a_dagster.lib.invoicing.billing_periods import first_billing_day

# E2A_BILLING_START is read here, at import: the partitions are part of the asset's definition, which Dagster needs
# before any resource exists, so it cannot come from the settings resource (defs/resources.py). It stays a variable
# of the code location's environment (`e2a dev` passes its own environment through, lib/core/settings.py child_env).
# end_offset=1: today's key exists as soon as the UTC day starts, so a 02:00 run east of UTC (where the
# previous local day is today in UTC) finds its partition.
BILLING_DAYS = dg.DailyPartitionsDefinition(start_date=first_billing_day().isoformat(), timezone="UTC", end_offset=1)

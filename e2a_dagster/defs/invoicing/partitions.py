"""The daily billing partitions. Key ``D`` = each tenant's own local day D (lib/billing_periods.py)."""

import dagster as dg

from e2a_dagster.lib.billing_periods import first_billing_day

# end_offset=1: today's key exists as soon as the UTC day starts, so a 02:00 run east of UTC (where the
# previous local day is today in UTC) finds its partition.
BILLING_DAYS = dg.DailyPartitionsDefinition(start_date=first_billing_day().isoformat(), timezone="UTC", end_offset=1)

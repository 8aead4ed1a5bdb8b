"""Invoice guard (DESIGN §6): billing ingestion, adjustments, the nightly reconciliation job, schedules."""

"""Quality gates: Great Expectations suites as Dagster asset checks (DESIGN §1), freshness policies."""

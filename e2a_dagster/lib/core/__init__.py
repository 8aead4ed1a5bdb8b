"""Shared plumbing: settings, the clock, the database and its schema, dbt, reference data and the vocabulary."""

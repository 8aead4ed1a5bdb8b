"""Data quality: the GX suites on E²A's tables and the reference-data linter."""

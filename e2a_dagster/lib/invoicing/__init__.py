"""The invoice guard: invoice lines, billing periods, adjustments and their figures."""

"""Actions that close the loop: notifications and the daily SLA radar report."""

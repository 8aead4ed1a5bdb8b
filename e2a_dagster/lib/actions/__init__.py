"""What E²A sends: notifications and the SLA radar report."""

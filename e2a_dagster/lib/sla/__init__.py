"""The SLA radar: the warehouse calendar and the compliance figures."""

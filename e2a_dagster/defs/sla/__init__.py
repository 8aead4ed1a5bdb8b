"""SLA radar (DESIGN §5): the warehouse calendar asset, the near-real-time refresh job and its schedule."""

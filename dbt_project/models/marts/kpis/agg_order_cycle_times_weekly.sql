-- KPI: order cycle times (paid -> handed to carrier, paid -> delivered) per tenant, warehouse and paid ISO week.
{{ order_cycle_times('week') }}

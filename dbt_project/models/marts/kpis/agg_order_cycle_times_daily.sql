-- KPI: order cycle times (paid -> handed to carrier, paid -> delivered) per tenant, warehouse and paid day.
{{ order_cycle_times('day') }}

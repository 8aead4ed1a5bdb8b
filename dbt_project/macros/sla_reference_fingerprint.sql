{#-
    A SQL expression hashing the reference data due times depend on (warehouses, calendar exceptions,
    SLA policies, carrier services). When it changes, the SLA models recompute every order.
-#}
{% macro sla_reference_fingerprint() -%}
    (select {{ dbt.hash("string_agg(part, '|' order by part)") }} from (
        select cast(w.* as text) as part from {{ ref('warehouses') }} as w
        union all select cast(c.* as text) from {{ ref('calendar_exceptions') }} as c
        union all select cast(p.* as text) from {{ ref('sla_policies') }} as p
        union all select cast(s.* as text) from {{ ref('carrier_services') }} as s
    ) as reference_rows)
{%- endmacro %}

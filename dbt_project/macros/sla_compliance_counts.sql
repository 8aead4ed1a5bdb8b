{#-
    The SLA compliance counts, defined once for every compliance aggregate (DESIGN §7): over rows carrying
    `status` and `is_due` (see sla_is_due). Due = the stage's deadline has passed and it has an outcome;
    late counts overdue stages too; cancelled stages are counted apart and never due.
-#}
{% macro sla_compliance_counts() -%}
        count(*) filter (where is_due) as due_count,
        count(*) filter (where is_due and status = 'met') as met_count,
        count(*) filter (where is_due and status in ('late', 'overdue')) as late_count,
        count(*) filter (where is_due and status = 'overdue') as overdue_count,
        count(*) filter (where status = 'cancelled') as cancelled_count
{%- endmacro %}

{#- The compliance of a row of those counts: met of due, in percent to the cent; null when nothing is due. -#}
{% macro sla_compliance_pct() -%}
    cast(case when due_count > 0 then round(100.0 * met_count / due_count, 2) end as numeric(5, 2))
{%- endmacro %}

{#- Whether an evaluation counts as due at `as_of` (a SQL timestamptz expression). -#}
{% macro sla_is_due(as_of) -%}
    status in ('met', 'late', 'overdue') and due_at <= {{ as_of }}
{%- endmacro %}

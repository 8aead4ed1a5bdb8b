{#-
    The (tenant, warehouse, stage, local due date) keys a live build of agg_sla_compliance_daily recounts:
    - the day every stage re-evaluated since its last build is due on now,
    - the day such a stage was due on before (it moved: that day lost it),
    - the days around the previous as_of and later (stages there become due as time passes).
-#}
{% macro sla_compliance_affected_days() -%}
    {%- set evaluations = ref('fct_sla_evaluations') -%}
    {%- set previous_build = previous_build_literal('max(built_at)') -%}
    select tenant_id, warehouse_id, stage, due_local_date
    from {{ evaluations }}
    where built_at > {{ previous_build }} and due_local_date is not null
    union
    select tenant_id, previous_warehouse_id, stage, previous_due_local_date
    from {{ evaluations }}
    where built_at > {{ previous_build }} and previous_due_local_date is not null
    union
    select tenant_id, warehouse_id, stage, due_local_date
    from {{ evaluations }}
    where due_local_date >= {{ previous_build_literal('cast(max(as_of) as date) - 2', 'date') }}
{%- endmacro %}

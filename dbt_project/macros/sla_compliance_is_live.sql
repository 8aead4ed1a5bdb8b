{#-
    Whether agg_sla_compliance_daily may recount only the days that changed since its last build.

    On top of is_live_incremental(): the days a changed stage left are known only from the row version
    fct_sla_evaluations replaced (previous_warehouse_id, previous_due_local_date). That is the day the stage was
    counted in here if fct_sla_evaluations changed the row once since this model's last build. When it changed
    a row twice (previous_built_at is later than this model's last build: a build of fct_sla_evaluations this
    model missed), or rewrote every row (a full build: no previous versions), this build recounts every day.
    Both checks read the built_at index.
-#}
{% macro sla_compliance_is_live() -%}
    {%- if not is_live_incremental() -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- if not execute -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- set previous_build = previous_build_literal('max(built_at)') -%}
    {%- set evaluations = ref('fct_sla_evaluations') -%}
    {%- set result = run_query(
        "select coalesce((select min(built_at) from " ~ evaluations ~ ") > " ~ previous_build ~ ", false)"
        ~ " or exists (select 1 from " ~ evaluations ~ " where built_at > " ~ previous_build
        ~ " and previous_built_at > " ~ previous_build ~ ")"
    ) -%}
    {{- return(not result.rows[0][0]) -}}
{%- endmacro %}

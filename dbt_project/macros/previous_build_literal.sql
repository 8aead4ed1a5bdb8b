{#-
    A value of the model's previous build (e.g. `max(as_of)`), read when the model runs and inlined as a
    literal, so the planner sees the real bound and picks the index (a parameter from a subquery gets a
    default selectivity of one third, hence a full scan of a large history). An empty table gives
    -infinity: everything is newer.
-#}
{% macro previous_build_literal(expression, data_type='timestamptz') -%}
    {%- set value = none -%}
    {%- if execute and this is not none -%}
        {%- set result = run_query("select " ~ expression ~ " from " ~ this) -%}
        {%- if result.rows | length > 0 -%}
            {%- set value = result.rows[0][0] -%}
        {%- endif -%}
    {%- endif -%}
    {{- "cast('" ~ (value if value is not none else '-infinity') ~ "' as " ~ data_type ~ ")" -}}
{%- endmacro %}

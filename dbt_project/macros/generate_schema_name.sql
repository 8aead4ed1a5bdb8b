{#-
    Use a model's custom schema name verbatim (`marts`, not `public_marts`), so the
    schemas of DESIGN §7 are the same in every environment. Nodes without a custom
    schema (tests, ad-hoc models) go to the target schema.
    The var `e2a_schema_prefix` (default empty) builds everything (seeds, staging, intermediate,
    marts) into `<prefix>_<schema>` instead: scratch copies of the pipeline that never touch the
    real schemas (backtests: `backtest_marts`, lib/core/backtest.py; lint scenarios). Sources keep
    reading the live raw tables and calendar unless their own vars say otherwise.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set prefix = var('e2a_schema_prefix', '') | string | trim -%}
    {%- set name = target.schema if custom_schema_name is none else custom_schema_name | trim -%}
    {%- if prefix -%}
        {{ prefix }}_{{ name }}
    {%- else -%}
        {{ name }}
    {%- endif -%}
{%- endmacro %}

{#-
    The instant an evaluation describes (DESIGN §5), as a SQL timestamptz expression.
    `var('as_of')` set (ISO-8601 with offset) -> that literal; unset/null/empty -> now().
    Only events with occurred_at <= as_of count, so a past as_of reproduces what was known then.
-#}
{% macro as_of_timestamp() -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of is none or (as_of | string | trim) in ('', 'None', 'null', 'now') -%}
        {{ dbt.current_timestamp() }}
    {%- else -%}
        cast('{{ as_of | string | trim | replace("'", "''") }}' as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}

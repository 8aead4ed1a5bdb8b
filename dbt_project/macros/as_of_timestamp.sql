{#-
    The instant an evaluation describes (DESIGN §5), as a SQL timestamptz expression.
    `var('as_of')` set (ISO-8601 with offset) -> that literal ("pinned": a backtest or audit);
    unset/null/empty/'now' -> the start of this dbt invocation (`run_started_at`), so every model of one
    build evaluates the same instant. Only events with occurred_at <= as_of count.
-#}
{% macro as_of_timestamp() -%}
    {%- if as_of_is_pinned() -%}
        cast('{{ var("as_of") | string | trim | replace("'", "''") }}' as timestamp with time zone)
    {%- else -%}
        cast('{{ run_started_at.isoformat() }}' as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}

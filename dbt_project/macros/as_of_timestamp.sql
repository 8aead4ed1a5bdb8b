{#-
    The instant an evaluation describes (DESIGN §5), as a SQL timestamptz expression.
    `var('as_of')` set (ISO-8601 with offset) -> that literal ("pinned": a backtest or audit);
    else the env var E2A_NOW (the live clock, pinned by tests and audits: lib/core/clock.py) -> that literal;
    else the start of this dbt invocation (`run_started_at`), so every model of one build evaluates the same
    instant. Only events with occurred_at <= as_of count. A live build at E2A_NOW is not "pinned": it
    continues the live incremental state like a wall-clock build.
-#}
{% macro as_of_timestamp() -%}
    {%- if as_of_is_pinned() -%}
        cast('{{ var("as_of") | string | trim | replace("'", "''") }}' as timestamp with time zone)
    {%- elif env_var('E2A_NOW', '') | trim -%}
        cast('{{ env_var("E2A_NOW") | trim | replace("'", "''") }}' as timestamp with time zone)
    {%- else -%}
        cast('{{ run_started_at.isoformat() }}' as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}

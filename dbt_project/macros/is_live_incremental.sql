{#-
    Whether an incremental model may recompute only what changed since its last build ("live" mode).

    False (= recompute everything, after `reset_unless_live_incremental` emptied the table) when:
      - the table does not exist yet or --full-refresh was asked (dbt's is_incremental() is false);
      - this build is pinned to an as_of (a backtest must see exactly the events up to that instant);
      - the previous build was pinned (its rows describe another instant);
      - `fingerprint_sql` is given and its value differs from the stored `reference_fingerprint`
        (policies, calendars or carrier services changed: every due time may move).
    Rows written in live mode carry as_of_is_pinned = false; the check reads one row only.
-#}
{% macro is_live_incremental(fingerprint_sql=none) -%}
    {%- if this is none or not is_incremental() or as_of_is_pinned() -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- if not execute -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- set columns = "as_of_is_pinned" ~ (", reference_fingerprint, " ~ fingerprint_sql if fingerprint_sql else "") -%}
    {%- set result = run_query("select " ~ columns ~ " from " ~ this ~ " limit 1") -%}
    {%- if result.rows | length == 0 -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- set row = result.rows[0] -%}
    {%- if row[0] -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- if fingerprint_sql and row[1] != row[2] -%}
        {{- return(false) -}}
    {%- endif -%}
    {{- return(true) -}}
{%- endmacro %}

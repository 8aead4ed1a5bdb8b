{#-
    Whether an incremental model may recompute only what changed since its last build ("live" mode).

    False (= recompute everything, after `reset_unless_live_incremental` emptied the table) when:
      - the table does not exist yet or --full-refresh was asked (dbt's is_incremental() is false);
      - this build is pinned to an as_of (a backtest must see exactly the events up to that instant);
      - the previous build was pinned (its rows describe another instant);
      - the live clock moved back (E2A_NOW set earlier than the previous build's as_of): events between the
        two instants must stop counting;
      - `fingerprint_sql` is given and its value differs from the stored `reference_fingerprint`
        (policies, calendars or carrier services changed: every due time may move).
    Rows written in live mode carry as_of_is_pinned = false. The checks read one row and the as_of index.

    Downstream models pick the rows an upstream build rewrote by `built_at` (macros/build_stamp.sql), not by
    as_of: a pinned live clock (E2A_NOW) gives several builds the same as_of.
-#}
{% macro is_live_incremental(fingerprint_sql=none) -%}
    {%- if this is none or not is_incremental() or as_of_is_pinned() -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- if not execute -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- set columns = "as_of_is_pinned, (select max(as_of) from " ~ this ~ ") > " ~ as_of_timestamp()
        ~ (", reference_fingerprint, " ~ fingerprint_sql if fingerprint_sql else "") -%}
    {%- set result = run_query("select " ~ columns ~ " from " ~ this ~ " limit 1") -%}
    {%- if result.rows | length == 0 -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- set row = result.rows[0] -%}
    {%- if row[0] or row[1] -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- if fingerprint_sql and row[2] != row[3] -%}
        {{- return(false) -}}
    {%- endif -%}
    {{- return(true) -}}
{%- endmacro %}

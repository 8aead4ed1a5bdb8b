{#-
    The instant this dbt invocation started (`run_started_at`, the wall clock), stamped on every row a live
    incremental model writes (`built_at`). Downstream models pick the rows rewritten since their own last build
    by `built_at > previous max(built_at)`. It is not `as_of`: a pinned live clock (E2A_NOW) gives several builds
    one as_of, and a change marker must still tell them apart. Builds of these models run one at a time.
-#}
{% macro build_stamp() -%}
    cast('{{ run_started_at.isoformat() }}' as timestamp with time zone)
{%- endmacro %}

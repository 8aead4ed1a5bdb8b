{#-
    Every calendar month an invoice's period overlaps, as a `month_start` column: a lateral join on the rows of
    `alias` (which has `period_start` and `period_end`). An invoice is judged in each month it covers; the
    expected charges and the reconciliation must agree on which.
-#}
{% macro months_overlapped(alias) -%}
    cross join lateral generate_series(
        {{ dbt.date_trunc('month', alias ~ '.period_start') }},
        {{ dbt.date_trunc('month', alias ~ '.period_end') }},
        interval '1 month'
    ) as month_start
{%- endmacro %}

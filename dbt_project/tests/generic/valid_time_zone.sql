{#-
    Fails for every non-null value of the column that is not an IANA time zone name
    known to the PostgreSQL server (pg_timezone_names).
-#}
{% test valid_time_zone(model, column_name) %}
    select {{ column_name }} as invalid_time_zone
    from {{ model }}
    where {{ column_name }} is not null
      and {{ column_name }} not in (select name from pg_catalog.pg_timezone_names)
{% endtest %}

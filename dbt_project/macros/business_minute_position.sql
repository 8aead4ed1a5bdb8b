{#-
    The business-minute position of `instant` on the warehouse calendar (DESIGN §5): the business minutes
    before its local day (`cum_minutes_before`) plus the minutes since opening, clamped to the day's hours.
    `day` is the alias of the int_warehouse_days_accumulated row of the instant's local date. The difference
    of two positions is the business time between the instants; an instant outside opening hours sits at the
    next opening (or the last closing, which is the same position).
-#}
{% macro business_minute_position(instant, day) -%}
    ({{ day }}.cum_minutes_before + case
        when {{ day }}.is_business_day then
            least({{ day }}.business_minutes,
                  greatest(0, extract(epoch from ({{ instant }}) - {{ day }}.open_at) / 60))
        else 0
    end)
{%- endmacro %}

-- The instant an order-level promise (text, as lib/events validates it) stands for: an ISO-8601 instant as it
-- is; a date YYYY-MM-DD is 24:00 at the end of that day in the given time zone (the next day's local midnight,
-- so a day of 23 or 25 hours across a DST change is still a whole day).
{% macro promise_instant(promise, time_zone) -%}
    case
        when {{ promise }} ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
            then cast(cast({{ promise }} as date) + 1 as timestamp) at time zone ({{ time_zone }})
        else cast({{ promise }} as timestamptz)
    end
{%- endmacro %}

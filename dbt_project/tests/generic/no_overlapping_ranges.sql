{#-
    Effective-dated reference data: within one `partition_by` key, the half-open ranges
    [lower_bound_column, upper_bound_column) of different versions must not overlap,
    and every range must be non-empty (lower < upper, both not null).

    `version_columns` identify one version when a version spans several rows (the tiers
    of a rate card): rows are first reduced to distinct (partition, version, range), and
    only ranges of *different* versions are compared. Without it, every row is its own version.
-#}
{% test no_overlapping_ranges(model, partition_by, lower_bound_column, upper_bound_column, version_columns=none) %}
    {%- set version_cols = version_columns if version_columns else [] -%}
    {%- set text_type = dbt.type_string() -%}
    with ranges as (
        select distinct
            {%- for col in partition_by %}
            cast({{ col }} as {{ text_type }}) as p_{{ loop.index }},
            {%- endfor %}
            {%- for col in version_cols %}
            cast({{ col }} as {{ text_type }}) as v_{{ loop.index }},
            {%- endfor %}
            {{ lower_bound_column }} as range_lower,
            {{ upper_bound_column }} as range_upper
        from {{ model }}
    ),

    versioned as (
        select
            ranges.*,
            {%- if version_cols %}
            dense_rank() over (
                order by {% for col in version_cols %}v_{{ loop.index }}{{ ', ' if not loop.last }}{% endfor %}
            ) as version_key
            {%- else %}
            row_number() over (order by range_lower, range_upper) as version_key
            {%- endif %}
        from ranges
    ),

    empty_ranges as (
        select
            {%- for col in partition_by %}
            p_{{ loop.index }},
            {%- endfor %}
            cast(range_lower as {{ text_type }}) as range_lower,
            cast(range_upper as {{ text_type }}) as range_upper,
            cast(null as {{ text_type }}) as other_range_lower,
            cast(null as {{ text_type }}) as other_range_upper,
            'empty, inverted or unbounded range' as problem
        from versioned
        where range_lower is null
           or range_upper is null
           or not (range_lower < range_upper)
    ),

    overlapping as (
        select
            {%- for col in partition_by %}
            a.p_{{ loop.index }},
            {%- endfor %}
            cast(a.range_lower as {{ text_type }}) as range_lower,
            cast(a.range_upper as {{ text_type }}) as range_upper,
            cast(b.range_lower as {{ text_type }}) as other_range_lower,
            cast(b.range_upper as {{ text_type }}) as other_range_upper,
            'overlaps another version' as problem
        from versioned as a
        inner join versioned as b
            on a.version_key < b.version_key
            {%- for col in partition_by %}
            and a.p_{{ loop.index }} = b.p_{{ loop.index }}
            {%- endfor %}
            and a.range_lower < b.range_upper
            and b.range_lower < a.range_upper
    )

    select * from empty_ranges
    union all
    select * from overlapping
{% endtest %}

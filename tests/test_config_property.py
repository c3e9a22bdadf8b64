"""Property-based test of config validation: any input either gives a config whose every field
has its declared type and bounds, or a ConfigError naming the key; nothing else."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.mbmpo import MBMPOConfig
from benchmark.config import apply_overrides, fields_of, validate
from benchmark.errors import ConfigError

FIELDS = list(fields_of(MBMPOConfig))
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(min_value=-5, max_value=600), max_size=3),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=4))
def test_validation_accepts_only_valid_configs(overrides):
    try:
        config = apply_overrides(MBMPOConfig(), overrides)
    except ConfigError as error:
        message = str(error)
        assert any(key in message for key in overrides) or "num_tasks" in message
        return
    validate(config)  # idempotent: a returned config is valid
    for name, (_, field) in fields_of(MBMPOConfig).items():
        value = getattr(config, name)
        assert not isinstance(value, float) or math.isfinite(value), (name, value)
        for bound, limit in field.metadata.items():
            if value is None:
                continue
            assert {
                "ge": value >= limit,
                "gt": value > limit,
                "le": value <= limit,
                "lt": value < limit,
            }[bound], (name, value)
    assert set(dataclasses.asdict(config)) == set(FIELDS)

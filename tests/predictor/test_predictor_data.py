"""Reading a device's training data from the database, and the ops it rebuilds."""

from __future__ import annotations

import pytest

from db.engine import session_scope
from predictor.data import load_training_data, op_from_config, op_from_key
from spaces import Op, get_space, list_spaces
from tests.predictor.synthetic import SPACE
from tests.utils.factories import block_records, config_ops, config_records, fixed_records, ingest, synthetic_ms


def test_loads_blocks_fixed_configs_models_and_heads(synthetic_db):
    with session_scope(synthetic_db) as session:
        data = load_training_data(session, device="synth-cpu", space=SPACE)
    assert data.describe() == {"block": 198, "fixed": 4, "config": 80, "model": 30, "head": 30}
    assert data.skipped == ()
    expected = {op.key for op in config_ops(80)}
    assert {s.op.key for s in data.configs} == expected
    sample = next(s for s in data.blocks if s.key == f"{SPACE}/L7/k5_e6")
    assert (sample.layer, sample.block, sample.op) == (7, "k5_e6", get_space(SPACE).op(7, "k5_e6"))
    assert sample.latency_ms == pytest.approx(synthetic_ms(sample.op))
    assert all(m.arch.space.name == SPACE for m in data.models)


def test_a_later_run_overrides_and_the_fingerprint_follows_the_values(db_url):
    ingest(db_url, "pi", block_records(SPACE, {(0, "k3_e1"): 1.0, (1, "k3_e3"): 2.0}), uid="first")
    with session_scope(db_url) as session:
        before = load_training_data(session, device="pi", space=SPACE)
        again = load_training_data(session, device="pi", space=SPACE)
    ingest(db_url, "pi", block_records(SPACE, {(0, "k3_e1"): 1.5}), uid="second")
    with session_scope(db_url) as session:
        after = load_training_data(session, device="pi", space=SPACE)
    assert before.fingerprint == again.fingerprint != after.fingerprint
    assert sorted(s.latency_ms for s in after.blocks) == [1.5, 2.0]


def test_configs_measured_under_another_space_are_used_as_shapes(db_url):
    ops = config_ops(5, seed=4)
    ingest(db_url, "pi", config_records(ops, synthetic_ms, space="mbconv-cifar100"))
    with session_scope(db_url) as session:
        data = load_training_data(session, device="pi", space=SPACE)
    assert {s.op for s in data.configs} == set(ops)


def test_every_op_of_every_space_reads_back_from_its_key_and_fields():
    for name in list_spaces():
        for key, op in get_space(name).distinct_ops.items():
            rebuilt = op_from_key(key)  # the key leaves out what does not change the op's cost (an identity's act)
            assert (rebuilt.key, rebuilt.flops, rebuilt.output_shape) == (key, op.flops, op.output_shape)
            fields = {f: getattr(op, f) for f in Op.__dataclass_fields__} | {"expansion": str(op.expansion)}
            assert op_from_config(fields) == op


@pytest.mark.parametrize("key, message", [
    ("conv_h32_cin16_x9", "unexpected part 'x9'"),
    ("conv_h32_cin16_cout16_k3_s1_e1_g1_res_extra", "unexpected part 'extra'"),
    ("skip_h32_cin16_cout16_s01", "not canonical"),
])
def test_malformed_op_keys_are_named(key, message):
    with pytest.raises(ValueError, match=message):
        op_from_key(key)


def test_a_space_inherits_the_entries_another_space_measured_at_the_same_place(db_url):
    ingest(db_url, "pi", block_records(SPACE, synthetic_ms) + fixed_records(SPACE, synthetic_ms))
    with session_scope(db_url) as session:
        extended = load_training_data(session, device="pi", space="fbnet-extended-cifar100")
        imagenet = load_training_data(session, device="pi", space="fbnet-imagenet")
    assert extended.describe() == {"block": 198, "fixed": 4, "config": 0, "model": 0, "head": 0}
    assert {(s.layer, s.block) for s in extended.blocks} == {
        (layer.index, b.name) for layer in get_space(SPACE).layers for b in layer.blocks}
    # at 224 x 224 input no op is at the same place: the CIFAR entries are extra shapes there
    assert imagenet.describe()["block"] == 0 and imagenet.describe()["config"] == 198 + 4

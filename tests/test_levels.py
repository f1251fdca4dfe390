import pytest

from adaptive_csp import Level, LevelLadder, Rung


def test_level_validation_and_key():
    lv = Level([(0.5, 3), (0.25, 0)])
    assert lv.key == "r0.5b3-r0.25b0"
    assert Level.from_list(lv.to_list()) == lv
    assert hash(lv) == hash(Level([(0.5, 3), (0.25, 0)]))
    with pytest.raises(ValueError, match="ratio must be in"):
        Level([(0.0, 1)])
    with pytest.raises(ValueError, match="at least one stage"):
        Level([])
    with pytest.raises(ValueError, match="blocks must be an int"):
        Level([(0.5, 1.5)])


def test_ladder_json_round_trip_and_costs():
    rungs = [Rung(Level([(0.5, i)]), macs=10 * (i + 1), latency_ms=float(i + 1), accuracy=0.8 + i / 100)
             for i in range(4)]
    ladder = LevelLadder(rungs)
    back = LevelLadder.from_json(ladder.to_json())
    assert back == ladder
    assert back.costs == (0.25, 0.5, 0.75, 1.0)
    assert ladder.full == 3 and ladder.index(-1) == 3
    with pytest.raises(ValueError, match="out of range"):
        ladder.index(4)
    with pytest.raises(ValueError, match="repeat"):
        LevelLadder([rungs[0], rungs[0]])
    with pytest.raises(ValueError, match="'rungs'"):
        LevelLadder.from_dict({"levels": []})


def test_costs_fall_back_to_macs_then_even():
    ladder = LevelLadder([Rung(Level([(0.5, i)]), macs=m) for i, m in enumerate((5, 10, 20))])
    assert ladder.costs == (0.25, 0.5, 1.0)
    even = LevelLadder([Level([(0.5, i)]) for i in range(4)])
    assert even.costs == (0.25, 0.5, 0.75, 1.0)
    with pytest.raises(ValueError, match="ascending"):
        LevelLadder.from_costs([1.0, 0.5])

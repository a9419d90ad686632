"""Which node stages and probes a small remote target for the driver (engine/target_homes)."""

from facefusion_ray.engine.target_homes import next_home


def test_homes_go_to_the_node_with_the_fewest_per_actor() -> None:
    capacity = {"n1": 2, "n2": 1, "n3": 1}
    assert next_home(capacity, {}) == "n1"  # ties: the first by name
    assert next_home(capacity, {"n1": 1}) == "n2"
    assert next_home(capacity, {"n1": 1, "n2": 1}) == "n3"
    # n1 holds two actors: a second home there is one per actor, as on n2 and n3.
    assert next_home(capacity, {"n1": 1, "n2": 1, "n3": 1}) == "n1"
    assert next_home(capacity, {"n1": 2, "n2": 1, "n3": 1}) == "n1"
    assert next_home(capacity, {"n1": 3, "n2": 1, "n3": 1}) == "n2"


def test_no_home_without_a_node_that_holds_an_actor() -> None:
    assert next_home({}, {}) is None
    assert next_home({"head": 0}, {}) is None
    assert next_home({"head": 0, "n1": 1}, {"n1": 5}) == "n1"

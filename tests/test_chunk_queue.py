"""Which chunk an actor takes next: chunks of a staged target stay on the nodes that hold it,
without leaving an actor idle while work waits (engine/chunk_queue, no Ray)."""

from facefusion_ray.engine.chunk_queue import ChunkQueue

LIMIT = 2


def queue_of(*chunks: tuple[int, int, str | None]) -> ChunkQueue[str]:
    """(render, chunk, place) each, named `render.chunk`."""
    queue: ChunkQueue[str] = ChunkQueue()
    for render, chunk, place in chunks:
        queue.push(render, chunk, place, f"{render}.{chunk}")
    return queue


def test_every_chunk_of_a_target_goes_to_the_node_that_took_its_first() -> None:
    # Six renders of clip A (one chunk each), then two of clip B; two nodes of one actor.
    renders_of_a = [(render, 0, "A") for render in range(6)]
    queue = queue_of(*renders_of_a, (6, 0, "B"), (7, 0, "B"))
    free = {"n1": LIMIT, "n2": LIMIT}
    assert queue.take("n1", 0, free, actors=2) == "0.0"
    free["n1"] -= 1
    # The other idle actor starts on clip B instead of downloading clip A as well.
    assert queue.take("n2", 0, free, actors=2) == "6.0"
    free["n2"] -= 1
    assert queue.take("n1", 1, free, actors=2) == "1.0"
    assert queue.take("n2", 1, free, actors=2) == "7.0"
    # Once n2 is idle again it takes clip A's next render only because n1 has no free slot
    # and four renders of A wait; n2 is then a second home of A, whose chunks it takes even
    # while busy.
    assert queue.take("n2", 0, {"n1": 0, "n2": LIMIT}, actors=2) == "2.0"
    assert queue.take("n2", 1, {"n1": 0, "n2": 1}, actors=2) == "3.0"
    assert len(queue) == 2


def test_an_idle_actor_waits_while_the_home_node_has_room() -> None:
    queue = queue_of((0, 0, "A"), (0, 1, "A"))
    assert queue.take("n1", 0, {"n1": LIMIT, "n2": LIMIT}, actors=2) == "0.0"
    # n1 can still take the second chunk (one slot left), so n2 does not download A for it.
    assert queue.take("n2", 0, {"n1": 1, "n2": LIMIT}, actors=2) is None
    assert queue.take("n1", 1, {"n1": 1, "n2": LIMIT}, actors=2) == "0.1"


def test_chunks_read_by_range_go_to_any_actor_in_order() -> None:
    queue = queue_of((0, 1, None), (0, 0, None), (1, 0, None))
    free = {"n1": LIMIT, "n2": LIMIT}
    assert queue.take("n2", 0, free, actors=2) == "0.0"
    assert queue.take("n1", 0, free, actors=2) == "0.1"
    # A busy actor takes a chunk without a place only from a queue as long as the pool.
    assert queue.take("n1", 1, free, actors=2) is None
    assert queue.take("n1", 1, free, actors=1) == "1.0"


def test_a_busy_actor_takes_its_own_targets_chunks_before_a_new_target() -> None:
    queue = queue_of((0, 0, "A"), (1, 0, "B"), (2, 0, "A"), (3, 0, "C"))
    free = {"n1": LIMIT, "n2": LIMIT, "n3": LIMIT}
    assert queue.take("n1", 0, free, actors=3) == "0.0"
    # Busy, with a queue as long as the pool: its own clip A comes before the older clip B.
    assert queue.take("n1", 1, {**free, "n1": 1}, actors=3) == "2.0"
    # Nor does it start a new target, even from a long queue: idle n2 does.
    assert queue.take("n1", 1, {**free, "n1": 1}, actors=2) is None
    assert queue.take("n2", 0, {**free, "n1": 1}, actors=2) == "1.0"


def test_a_target_whose_home_node_is_gone_gets_a_new_home() -> None:
    queue = queue_of((0, 0, "A"), (0, 1, "A"))
    assert queue.take("n1", 0, {"n1": LIMIT, "n2": LIMIT}, actors=2) == "0.0"
    # n1 was lost with its actor: the next chunk of A goes to the asking node, now A's home.
    assert queue.take("n2", 0, {"n2": LIMIT}, actors=1) == "0.1"
    queue.push(1, 0, "A", "1.0")
    assert queue.take("n2", 1, {"n2": 1, "n3": LIMIT}, actors=2) == "1.0"  # its own now


def test_removed_chunks_are_returned_and_never_handed_out() -> None:
    queue = queue_of((0, 0, "A"), (1, 0, "A"), (0, 1, None))
    assert queue.remove(lambda name: name.startswith("0.")) == ["0.0", "0.1"]
    assert queue.take("n1", 0, {"n1": LIMIT}, actors=1) == "1.0"
    assert len(queue) == 0


def test_an_idle_actor_steals_from_the_target_with_the_longest_wait_per_home() -> None:
    # Render 0 of A has five chunks, render 1 of B one; then A has four chunks waiting for its
    # two homes, and B eight for its one home.
    queue = queue_of(*[(0, chunk, "A") for chunk in range(5)], (1, 0, "B"))
    free = {"n1": LIMIT, "n2": LIMIT, "n3": LIMIT, "n4": LIMIT}
    assert queue.take("n1", 0, free, actors=4) == "0.0"
    assert queue.take("n2", 0, free, actors=4) == "1.0"
    assert queue.take("n3", 0, {**free, "n1": 0}, actors=4) == "0.1"  # A's home n1 is full
    for chunk in range(1, 9):
        queue.push(1, chunk, "B", f"1.{chunk}")
    queue.push(0, 5, "A", "0.5")
    queue.push(0, 6, "A", "0.6")
    full = {"n1": 0, "n2": 0, "n3": 0, "n4": LIMIT}
    assert queue.take("n4", 0, full, actors=4) == "1.1"
    # n4 is now a home of B, not of A: busy, it takes B's next chunks and none of A's.
    for chunk in range(2, 9):
        assert queue.take("n4", 1, {**full, "n4": 1}, actors=99) == f"1.{chunk}"
    assert queue.take("n4", 1, {**full, "n4": 1}, actors=99) is None


def test_a_target_staged_to_probe_it_starts_at_the_node_that_holds_it() -> None:
    queue: ChunkQueue[str] = ChunkQueue()
    queue.push(0, 0, "A", "0.0", home="n2")
    queue.push(1, 0, "A", "1.0", home="n1")  # a later render of A: its first home stays
    free = {"n1": LIMIT, "n2": LIMIT}
    # n1's idle actor finds no target without a home and n2 has room: it waits.
    assert queue.take("n1", 0, free, actors=2) is None
    assert queue.take("n2", 0, free, actors=2) == "0.0"
    assert queue.take("n2", 1, {"n1": LIMIT, "n2": 1}, actors=2) == "1.0"


def test_an_idle_actor_downloads_a_target_only_for_a_real_backlog() -> None:
    queue = queue_of(*[(render, 0, "A") for render in range(5)])
    free = {"n1": LIMIT, "n2": LIMIT}
    assert queue.take("n1", 0, free, actors=2) == "0.0"
    assert queue.take("n1", 1, {**free, "n1": 1}, actors=2) == "1.0"
    # n1 is full with three chunks of A waiting, which it will soon start: n2 waits rather
    # than download A as well.
    assert queue.take("n2", 0, {"n1": 0, "n2": LIMIT}, actors=2) is None
    queue.push(5, 0, "A", "5.0")
    assert queue.take("n2", 0, {"n1": 0, "n2": LIMIT}, actors=2) == "2.0"


def test_a_render_s_longest_chunks_go_out_first() -> None:
    # Chunks planned on keyframes: 29, 67, 60, 54, 23 and 67 frames. In frame order two
    # actors would get 29+60+23+67 and 67+54 frames; longest first, 67+60+29 and 67+54+23.
    queue: ChunkQueue[str] = ChunkQueue()
    for index, frames in enumerate((29, 67, 60, 54, 23, 67)):
        queue.push(0, index, None, f"0.{index}", frames=frames)
    queue.push(1, 0, None, "1.0", frames=300)  # a later render still waits its turn
    taken = [queue.take("n1", 0, {"n1": LIMIT}, actors=1) for _ in range(7)]
    assert taken == ["0.1", "0.5", "0.2", "0.3", "0.0", "0.4", "1.0"]

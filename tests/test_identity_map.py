"""Identity map: source i replaces person i of the target, people found by clustering."""

import numpy as np
import pytest

from facefusion_ray.analysis.identities import cluster_people, nearest_person
from facefusion_ray.analysis.select import FaceSelection, sort_faces
from facefusion_ray.engine.driver import run_swap
from facefusion_ray.media.images import read_image
from facefusion_ray.settings import SwapSettings
from tests.media_checks import decoded_frames, psnr

IDENTITY_MAP = FaceSelection(mode="identity-map")


def unit(vector: list[float]) -> np.ndarray:
    array = np.array(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


def test_people_are_clustered_and_ordered_by_sightings_then_position() -> None:
    alice, bob = unit([1, 0, 0]), unit([0, 1, 0])
    sightings = [(bob, 50.0), (alice, 10.0), (alice, 12.0), (unit([0.98, 0.05, 0]), 11.0)]
    people = cluster_people(sightings, max_distance=0.3)
    assert [person.sightings for person in people] == [3, 1]
    assert nearest_person(alice, np.stack([p.centroid for p in people]), 0.3) == 0
    assert nearest_person(bob, np.stack([p.centroid for p in people]), 0.3) == 1
    assert nearest_person(unit([0, 0, 1]), np.stack([p.centroid for p in people]), 0.3) is None


@pytest.mark.usefixtures("local_ray")
def test_two_sources_replace_the_two_first_people_of_a_photo(
    sample_media, detector, tmp_path
) -> None:
    output = tmp_path / "mapped.png"
    report = run_swap(
        [sample_media.source_tom_hanks, sample_media.source_astronaut],
        sample_media.group_photo,
        output,
        SwapSettings(face_selector=IDENTITY_MAP),
        show_progress=False,
    )
    assert report.faces_swapped == 2
    before, after = read_image(sample_media.group_photo), read_image(output)
    # Every person is seen once, so the people are numbered from the left.
    people = sort_faces(detector.detect(before), "left-right")
    for index, face in enumerate(people):
        x1, y1, x2, y2 = face.bbox
        core = (slice(int(y1 + 0.2 * (y2 - y1)), int(y2 - 0.2 * (y2 - y1))),
                slice(int(x1 + 0.2 * (x2 - x1)), int(x2 - 0.2 * (x2 - x1))))  # fmt: skip
        changed = psnr(before[core], after[core]) < 30.0
        assert changed == (index < 2), f"person {index} changed: {changed}"


@pytest.mark.usefixtures("local_ray")
def test_the_same_two_people_are_swapped_in_every_frame(
    sample_media, short_group_clip, tmp_path, detector, recognizer
) -> None:
    output = tmp_path / "mapped.mp4"
    report = run_swap(
        [sample_media.source_tom_hanks, sample_media.source_astronaut],
        short_group_clip,
        output,
        SwapSettings(face_selector=IDENTITY_MAP, chunk_frames=10, output_video_quality=95),
        show_progress=False,
    )
    assert report.faces_swapped == 2 * 40
    first = next(decoded_frames(short_group_clip))
    known = [
        recognizer.embed(first, face.landmarks_5)[1]
        for face in sort_faces(detector.detect(first), "left-right")
    ]
    swapped_people: set[int] | None = None
    for index, (before, after) in enumerate(
        zip(decoded_frames(short_group_clip), decoded_frames(output), strict=True)
    ):
        if index % 8:
            continue
        changed = set()
        for face in detector.detect(before):
            person = nearest_person(
                recognizer.embed(before, face.landmarks_5)[1], np.stack(known), 0.3
            )
            x1, y1, x2, y2 = face.bbox
            core = (slice(int(y1 + 0.2 * (y2 - y1)), int(y2 - 0.2 * (y2 - y1))),
                    slice(int(x1 + 0.2 * (x2 - x1)), int(x2 - 0.2 * (x2 - x1))))  # fmt: skip
            if psnr(before[core], after[core]) < 30.0:
                changed.add(person)
        assert len(changed) == 2, f"frame {index}: people {changed} changed"
        swapped_people = swapped_people or changed
        assert changed == swapped_people

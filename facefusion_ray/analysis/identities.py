"""Finding the distinct people of a video from their face embeddings."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facefusion_ray.analysis.select import face_distance


@dataclass
class Person:
    """One identity: the normalised mean of its embeddings, how often and where first seen."""

    centroid: np.ndarray
    sightings: int
    first_left: float  # left edge of the first face assigned to this person
    _total: np.ndarray

    def add(self, normed_embedding: np.ndarray) -> None:
        self._total = self._total + normed_embedding
        self.sightings += 1
        self.centroid = self._total / np.linalg.norm(self._total)


def cluster_people(
    sightings: Sequence[tuple[np.ndarray, float]], max_distance: float
) -> list[Person]:
    """Greedy online clustering of (normed embedding, box left edge) pairs, in the given order.

    A face joins the nearest person closer than `max_distance` (FaceFusion's face distance,
    (1 - cos) / 2) or starts a new one. People come back most seen first, ties broken by who
    was first seen further left, so the numbering is stable for the same footage.
    """
    people: list[Person] = []
    for embedding, left in sightings:
        distances = [face_distance(person.centroid, embedding) for person in people]
        if distances and min(distances) < max_distance:
            people[int(np.argmin(distances))].add(embedding)
        else:
            people.append(Person(embedding.copy(), 1, left, embedding.copy()))
    return sorted(people, key=lambda person: (-person.sightings, person.first_left))


def nearest_person(
    normed_embedding: np.ndarray, centroids: np.ndarray, max_distance: float
) -> int | None:
    """Index of the closest centroid within `max_distance`, or None."""
    if len(centroids) == 0:
        return None
    distances = [face_distance(centroid, normed_embedding) for centroid in centroids]
    best = int(np.argmin(distances))
    return best if distances[best] < max_distance else None

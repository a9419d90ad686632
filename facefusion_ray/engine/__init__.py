"""Ray: the job's actors, the chunk scheduler, the render feed, segments and publication."""

"""Ray planner, actors and reassembly for chunked video rendering."""

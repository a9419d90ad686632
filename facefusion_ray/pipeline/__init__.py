"""Per-frame and per-chunk work of a render, and its preparation: everything but Ray."""

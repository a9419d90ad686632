"""Entry points submitted with `ray job submit` (or run with `python -m ray_jobs.<name>`).

- `render_catalog`: every render of a batch spec, once.
- `ab_compare`: one target with several sources, compared side by side.
- `nightly`: a batch spec on a schedule, with a dated run report and cache pruning.

Each is thin: it parses its arguments and calls the library (`facefusion_ray`).
"""

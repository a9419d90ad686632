import sys

from facefusion_ray.cli.main import run_process

sys.exit(run_process())

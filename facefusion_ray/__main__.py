import sys

from facefusion_ray.cli.launch import run_process

sys.exit(run_process())

import sys

from facefusion_ray.cli import main

sys.exit(main())

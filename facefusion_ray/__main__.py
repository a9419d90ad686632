import sys

from facefusion_ray.cli.main import main

sys.exit(main())

"""Command line: `facefusion-ray swap | ab | batch | probe | samples | demo | models | cache |
ray`."""

import argparse
import gc
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from facefusion_ray.cli.cache_commands import add_cache_commands, run_cache_command
from facefusion_ray.cli.job_arguments import add_job_options, storage_options_from
from facefusion_ray.cli.job_commands import add_batch_commands, run_ab_command, run_batch_command
from facefusion_ray.cli.model_commands import add_models_commands, run_models_command
from facefusion_ray.cli.ray_commands import add_ray_commands, run_ray_command
from facefusion_ray.cli.swap_options import add_swap_options, settings_from
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.log_redaction import install_redaction

logger = logging.getLogger("facefusion_ray")

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facefusion-ray", description="Distributed batch face swapping on Ray."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    swap = commands.add_parser("swap", help="swap faces of a video or image")
    swap.add_argument(
        "--source", type=Path, action="append", required=True, help="source face image (repeatable)"
    )
    swap.add_argument("--target", required=True, help="target video or image (path or s3:// URL)")
    swap.add_argument("--output", required=True, help="output video or image (path or s3:// URL)")
    add_swap_options(swap)
    add_job_options(swap)
    swap.add_argument(
        "--sequential",
        action="store_true",
        help="render in this process, frame by frame, without Ray (the baseline)",
    )

    probe = commands.add_parser("probe", help="print a media file's properties as JSON")
    probe.add_argument("file", type=Path)

    samples = commands.add_parser("samples", help="build the sample media, print their paths")
    samples.add_argument("--dir", type=Path, help="folder (default: the user cache)")

    add_models_commands(commands)
    add_cache_commands(commands)
    add_ray_commands(commands)

    demo = commands.add_parser("demo", help="swap Tom Hanks into the sample group video")
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("out/demo_swap.mp4"),
        help="output video; the report goes beside it as NAME.report.json unless --report "
        "names another file (default out/demo_swap.mp4)",
    )
    add_swap_options(demo)
    add_job_options(demo)

    add_batch_commands(commands)
    return parser


def run_swap_command(args: argparse.Namespace) -> int:
    from facefusion_ray.engine.driver import run_swap

    report = run_swap(
        args.source,
        args.target,
        args.output,
        settings_from(args),
        report_path=args.report,
        address=args.address,
        show_progress=not args.no_progress,
        sequential=args.sequential,
        work_store=args.work_store,
        storage_options=storage_options_from(args),
        force=args.force,
    )
    print(report.summary())
    return 0


def run_probe_command(args: argparse.Namespace) -> int:
    from facefusion_ray.media import probe_media

    print(json.dumps(probe_media(args.file).to_json_dict(), indent=2))
    return 0


def run_samples_command(args: argparse.Namespace) -> int:
    from facefusion_ray.sample_media import build_sample_media

    media = build_sample_media(args.dir)
    print(json.dumps({name: str(path) for name, path in vars(media).items()}, indent=2))
    return 0


def run_demo_command(args: argparse.Namespace) -> int:
    from facefusion_ray.comparison.before_after import write_before_after
    from facefusion_ray.engine.driver import run_swap
    from facefusion_ray.sample_media import PICTURE_FRAME, build_sample_media

    media = build_sample_media()
    report_path = args.report or args.output.with_suffix(".report.json")
    report = run_swap(
        [media.source_tom_hanks],
        media.target_video,
        args.output,
        settings_from(args),
        report_path=report_path,
        address=args.address,
        show_progress=not args.no_progress,
        work_store=args.work_store,
        storage_options=storage_options_from(args),
        force=args.force,
    )
    print(report.summary())
    picture = args.output.with_suffix(".before_after.jpg")
    write_before_after(media.target_video, args.output, PICTURE_FRAME, picture)
    print(f"demo output: {args.output.resolve()}")
    print(f"report: {report_path.resolve()}")
    print(f"before and after: {picture.resolve()}")
    return 0


COMMANDS = {
    "swap": run_swap_command,
    "probe": run_probe_command,
    "samples": run_samples_command,
    "demo": run_demo_command,
    "models": run_models_command,
    "cache": run_cache_command,
    "ray": run_ray_command,
    "ab": run_ab_command,
    "batch": run_batch_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_redaction()
    try:
        return COMMANDS[args.command](args)
    except FaceFusionRayError as error:
        print(f"facefusion-ray: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("facefusion-ray: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_process() -> int:
    """`facefusion-ray` as a process of its own (the console script, `python -m`): `main`,
    then an exit that skips collecting garbage over everything the imports built."""
    code = main()
    # The interpreter's last collections walk every object of Ray, pyarrow, ONNX Runtime...:
    # 0.2-0.4 s of wall after a job's output is published. Frozen objects are left to the
    # OS; whatever refcounting frees, atexit hooks (Ray's) and finalizers still run.
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run_process())

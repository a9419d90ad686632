"""The package tree reads as the flow, and the per-frame pipeline never needs Ray.

Layers, lowest first: a package may import its own layer and the ones below, never above.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facefusion_ray"
# Each top-level package or module of facefusion_ray, by layer (index = height).
LAYERS: list[set[str]] = [
    {"errors", "paths", "atomic_files", "option_scopes", "file_names"},
    {"assets", "storage"},
    {"media", "zoo", "inference", "log_redaction"},
    {"analysis"},
    {"cache", "processors", "settings", "sample_media"},
    {"pipeline", "comparison"},
    {"engine"},
    {"cli", "__main__"},
]


def top_level_imports(path: Path) -> set[str]:
    """The facefusion_ray.X names a module imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "facefusion_ray" and len(parts) > 1:
                names.add(parts[1])
    return names


def owner_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        owner = owner_of(path)
        if owner == "__init__":
            continue
        graph.setdefault(owner, set()).update(top_level_imports(path) - {owner})
    return graph


def layer_of(name: str) -> int:
    for height, members in enumerate(LAYERS):
        if name in members:
            return height
    raise AssertionError(f"facefusion_ray.{name} has no layer in {__file__}: add it")


def test_no_package_imports_a_higher_layer() -> None:
    upward = sorted(
        f"{owner} -> {imported}"
        for owner, imports in import_graph().items()
        for imported in imports
        if layer_of(imported) > layer_of(owner)
    )
    assert upward == []


def test_no_import_cycle_between_top_level_packages() -> None:
    graph = import_graph()
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, route = stack.pop()
            for following in graph.get(node, ()):
                if following == start:
                    cycles.append(" -> ".join([*route, start]))
                elif following not in seen:
                    seen.add(following)
                    stack.append((following, [*route, following]))
    assert cycles == []


@pytest.mark.parametrize(
    "module",
    [
        "facefusion_ray.pipeline.chunk_loop",
        "facefusion_ray.pipeline.sequential",
        "facefusion_ray.pipeline.render_preparation",
        "facefusion_ray.pipeline.still_image",
    ],
)
def test_the_pipeline_runs_without_ray(module: str) -> None:
    """Imported in a fresh interpreter: Ray must not be loaded by anything it needs."""
    probe = f"import sys, {module}; print('ray' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_every_pipeline_module_stays_free_of_ray() -> None:
    importing_ray = sorted(
        path.name
        for path in (PACKAGE / "pipeline").glob("*.py")
        if "ray" in {name.split(".")[0] for name in _imported_modules(path)}
    )
    assert importing_ray == []


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_a_sequential_swap_never_loads_ray(sample_media, tmp_path: Path) -> None:
    """The single-process baseline, through the command line, in a fresh interpreter."""
    output = tmp_path / "swapped.png"
    arguments = [
        "swap",
        "--sequential",
        f"--source={sample_media.source_tom_hanks}",
        f"--target={sample_media.group_photo}",
        f"--output={output}",
    ]
    probe = (
        "import sys; from facefusion_ray.cli.main import main; "
        f"code = main({arguments!r}); print(code, 'ray' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    assert result.stdout.strip().splitlines()[-1] == "0 False"
    assert output.is_file()


def test_rendering_never_loads_onnx(sample_media, tmp_path: Path) -> None:
    """onnx (with ml_dtypes) costs ~0.5 s of CPU to import in every process: only preparing a
    model needs it, once per store (done here by a first run when the cache is fresh)."""
    output = tmp_path / "swapped.png"
    arguments = [
        *("swap", "--sequential", f"--source={sample_media.source_tom_hanks}"),
        *(f"--target={sample_media.group_photo}", f"--output={output}"),
    ]
    probe = (
        "import sys, facefusion_ray.engine.render_actor; "
        "from facefusion_ray.cli.main import main; "
        f"code = main({arguments!r}); print(code, 'onnx' in sys.modules)"
    )
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
        )
    assert result.stdout.strip().splitlines()[-1] == "0 False"

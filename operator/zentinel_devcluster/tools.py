"""Build the local control plane's binaries from Go modules and cache them by version.

Each tool has a small wrapper module under ``hack/<name>/`` whose go.mod pins the upstream
module (and, for Kubernetes and etcd, maps their in-repo ``replace`` lines to published
versions). A build lands in ``<cache>/<name>-<version>-<hash of go.mod+go.sum>/`` and is
reused until the version or the wrapper changes. Nothing built is ever written into the
checkout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK_DIR = REPO_ROOT / "hack"

K8S_VERSION = "1.37.2"


def _k8s_ldflags(version: str) -> list[str]:
    major, minor, _ = version.split(".")
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return flags


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    # Files copied out of the upstream module source after the build: (path in module, dest name).
    module_files: tuple[tuple[str, str], ...] = ()
    # False: only built when named (``build alertmanager``, ``scripts/setup --bench``), never by the
    # default ``build`` that CI and ``scripts/setup`` run.
    default: bool = True
    # Files the upstream module's source needs but its published zip lacks (paths in the module,
    # e.g. a web UI's built assets that `go:embed` names). When set, the module is copied out of the
    # module cache (which is read-only and which `-overlay` may not touch), these files are written
    # into the copy as placeholders and the build uses it through a `replace` in a temporary modfile;
    # the committed go.mod and go.sum stay as they are.
    placeholder_files: tuple[str, ...] = ()

    @property
    def wrapper_dir(self) -> Path:
        return HACK_DIR / self.name


TOOLS: dict[str, Tool] = {
    "k8s": Tool(
        name="k8s",
        module="k8s.io/kubernetes",
        version=f"v{K8S_VERSION}",
        packages=tuple(
            f"k8s.io/kubernetes/cmd/{b}"
            for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        ),
        binaries=("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
        ldflags=tuple(_k8s_ldflags(K8S_VERSION)),
    ),
    "etcd": Tool(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version="v3.7.3",
        packages=("go.etcd.io/etcd/server/v3",),
        binaries=("etcd",),
    ),
    "kwok": Tool(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version="v0.8.0",
        packages=("sigs.k8s.io/kwok/cmd/kwok",),
        binaries=("kwok",),
        ldflags=("-X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0",),
        # kwok's own "fast" stages: pods go Pending -> Running (with an IP from the node's podCIDR)
        # and are removed on delete; nodes are initialised Ready and kept alive by heartbeats.
        module_files=(
            ("kustomize/stage/pod/fast/pod-ready.yaml", "stages/pod-ready.yaml"),
            ("kustomize/stage/pod/fast/pod-complete.yaml", "stages/pod-complete.yaml"),
            ("kustomize/stage/pod/fast/pod-delete.yaml", "stages/pod-delete.yaml"),
            ("kustomize/stage/node/fast/node-initialize.yaml", "stages/node-initialize.yaml"),
            ("kustomize/stage/node/heartbeat/node-heartbeat.yaml", "stages/node-heartbeat.yaml"),
            # `Logs` objects tell kwok which local file to serve as a container's (previous) log, so
            # `kubectl logs` and the operator read real log lines through the API server.
            ("kustomize/crd/bases/kwok.x-k8s.io_logs.yaml", "crds/kwok.x-k8s.io_logs.yaml"),
        ),
    ),
    "helm": Tool(
        name="helm",
        module="helm.sh/helm/v3",
        version="v3.22.0",
        packages=("helm.sh/helm/v3/cmd/helm",),
        binaries=("helm",),
        ldflags=("-X helm.sh/helm/v3/internal/version.version=v3.22.0",),
    ),
    # Prometheus 3.16.0 (its Go module versions are v0.3xx.y), for the test of the operator's
    # `metricsSource: Prometheus`. Without the `builtinassets` tag: the web UI is not embedded, the
    # HTTP API the operator queries works all the same.
    "prometheus": Tool(
        name="prometheus",
        module="github.com/prometheus/prometheus",
        version="v0.316.0",
        # promtool checks the chart's PrometheusRule and the dashboard queries.
        packages=("github.com/prometheus/prometheus/cmd/prometheus", "github.com/prometheus/prometheus/cmd/promtool"),
        binaries=("prometheus", "promtool"),
        ldflags=("-X github.com/prometheus/common/version.Version=3.16.0",),
    ),
    # Alertmanager, only for benchmarks/detection_latency.py (Prometheus + Alertmanager's time to page,
    # side by side with the operator's). Not a default tool: CI never builds it.
    "alertmanager": Tool(
        name="alertmanager",
        module="github.com/prometheus/alertmanager",
        version="v0.35.0",
        packages=(
            "github.com/prometheus/alertmanager/cmd/alertmanager",
            "github.com/prometheus/alertmanager/cmd/amtool",
        ),
        binaries=("alertmanager", "amtool"),
        ldflags=("-X github.com/prometheus/common/version.Version=0.35.0",),
        default=False,
        # Its web UI is embedded from ui/app/dist, built with npm and not in the module's zip; the
        # benchmark uses only the API, so a placeholder page stands in for each UI.
        placeholder_files=("ui/app/dist/elm/index.html", "ui/app/dist/mantine/index.html"),
    ),
}


def default_tools() -> list[str]:
    """The tools ``ensure()`` builds when given no names: every tool but the optional ones."""
    return [name for name, tool in TOOLS.items() if tool.default]


class ToolError(RuntimeError):
    pass


def cache_root() -> Path:
    env = os.environ.get("ZENTINEL_TOOLS_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "zentinel-operator" / "tools"


def _wrapper_hash(tool: Tool) -> str:
    h = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        path = tool.wrapper_dir / name
        if path.exists():
            h.update(path.read_bytes())
    h.update("\n".join(tool.ldflags).encode())
    h.update(repr(tool.module_files).encode())
    if tool.placeholder_files:  # only when set: the other tools' cache directories keep their names
        h.update(repr(tool.placeholder_files).encode())
    return h.hexdigest()[:12]


def tool_dir(tool: Tool) -> Path:
    return cache_root() / f"{tool.name}-{tool.version}-{_wrapper_hash(tool)}"


def is_built(tool: Tool) -> bool:
    d = tool_dir(tool)
    return (d / ".complete").exists() and all((d / "bin" / b).exists() for b in tool.binaries)


def _log(msg: str) -> None:
    print(f"[tools] {msg}", file=sys.stderr, flush=True)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    # go.mod and go.sum are committed: never let a build rewrite them.
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -mod=readonly").strip()
    return env


def _count_packages(tool: Tool, env: dict[str, str]) -> int | None:
    """How many packages the build compiles at most (for a percentage while building)."""
    try:
        out = subprocess.run(
            ["go", "list", "-deps", *tool.packages],
            cwd=tool.wrapper_dir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return len(out.splitlines()) or None


def _run_with_progress(cmd: Sequence[str], cwd: Path, env: dict[str, str], label: str, total: int | None) -> None:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    compiled = 0
    tail: list[str] = []
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(15):
            pct = f" of ~{total} ({100 * compiled // total}%)" if total else ""
            _log(f"{label}: {compiled} packages compiled{pct}, {int(time.monotonic() - started)}s elapsed")

    t = threading.Thread(target=ticker, daemon=True)
    t.start()
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            # `go build -v` prints one import path per compiled package; anything else is a message.
            if line and " " not in line and not line.startswith("#"):
                compiled += 1
            else:
                tail.append(line)
                tail = tail[-60:]
        rc = proc.wait()
    finally:
        done.set()
    if rc != 0:
        raise ToolError(f"{label}: `{' '.join(cmd)}` failed with exit code {rc}:\n" + "\n".join(tail))
    _log(f"{label}: built {compiled} packages in {int(time.monotonic() - started)}s")


def _module_dir(tool: Tool, env: dict[str, str]) -> Path:
    out = subprocess.run(
        ["go", "list", "-m", "-json", tool.module],
        cwd=tool.wrapper_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = json.loads(out)
    if not info.get("Dir"):
        subprocess.run(["go", "mod", "download", tool.module], cwd=tool.wrapper_dir, env=env, check=True)
        info = json.loads(
            subprocess.run(
                ["go", "list", "-m", "-json", tool.module],
                cwd=tool.wrapper_dir,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    return Path(info["Dir"])


_PLACEHOLDER = "<!doctype html><title>not built</title><p>This build has no web UI (see hack/{name}/go.mod).\n"


def _patched_module(tool: Tool, env: dict[str, str], work: Path) -> Path:
    """Copy ``tool``'s module source into ``work`` with its placeholder files; return a modfile using it.

    The modfile is the wrapper's go.mod plus a ``replace`` of the module by the copy (its go.sum is
    copied next to it, as ``go build -modfile`` expects); the build deletes ``work`` with the staging.
    """
    src = _module_dir(tool, env)
    copy = work / "module"
    shutil.copytree(src, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    for rel in tool.placeholder_files:
        out = copy / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_PLACEHOLDER.format(name=tool.name))
    modfile = work / "build.mod"
    modfile.write_text((tool.wrapper_dir / "go.mod").read_text() + f"\nreplace {tool.module} => {copy}\n")
    shutil.copyfile(tool.wrapper_dir / "go.sum", work / "build.sum")
    return modfile


def build(tool: Tool, *, force: bool = False) -> Path:
    """Build ``tool`` into its cache directory unless a complete build is already there."""
    dest = tool_dir(tool)
    if is_built(tool) and not force:
        return dest
    if shutil.which("go") is None:
        raise ToolError("the Go toolchain (`go`) is not on PATH; it is needed to build the control plane")
    env = _go_env()
    label = f"{tool.name} {tool.version}"
    _log(f"{label}: building {', '.join(tool.binaries)} into {dest} (first time only; cached by version)")
    total = _count_packages(tool, env)
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    cmd = ["go", "build", "-v", "-o", str(staging / "bin") + "/"]
    if tool.placeholder_files:
        cmd.append(f"-modfile={_patched_module(tool, env, staging / 'src')}")
    ldflags = ["-s", "-w", *tool.ldflags]
    cmd += ["-ldflags", " ".join(ldflags), *tool.packages]
    _run_with_progress(cmd, tool.wrapper_dir, env, label, total)
    if len(tool.packages) == 1 and len(tool.binaries) == 1:
        # go names the binary after the last path element that is not a major version (`server`
        # for go.etcd.io/etcd/server/v3); give it the name people know.
        outputs = [p for p in (staging / "bin").iterdir() if p.is_file()]
        target = staging / "bin" / tool.binaries[0]
        if len(outputs) == 1 and outputs[0] != target:
            outputs[0].rename(target)
    if tool.module_files:
        src = _module_dir(tool, env)
        for rel, name in tool.module_files:
            out = staging / name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, out)
    missing = [b for b in tool.binaries if not (staging / "bin" / b).exists()]
    if missing:
        raise ToolError(f"{label}: build finished but {missing} are missing from {staging / 'bin'}")
    shutil.rmtree(staging / "src", ignore_errors=True)
    (staging / ".complete").write_text(json.dumps({"version": tool.version, "built": time.time()}))
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest


def ensure(names: Sequence[str] | None = None, *, log: Callable[[str], None] = _log) -> dict[str, Path]:
    """Make sure the named tools (default: every default tool) are built; return name -> cache directory."""
    result: dict[str, Path] = {}
    for name in names or default_tools():
        tool = TOOLS[name]
        if is_built(tool):
            log(f"{tool.name} {tool.version}: cached at {tool_dir(tool)}")
        result[name] = build(tool)
    return result


def binary(name: str) -> Path:
    """Path of a built binary (``kube-apiserver``, ``etcd``, ``kwok``, ``helm``, ``kubectl``...)."""
    for tool in TOOLS.values():
        if name in tool.binaries:
            path = tool_dir(tool) / "bin" / name
            if not path.exists():
                raise ToolError(f"{name} is not built yet (expected at {path}); run `scripts/cluster build` first")
            return path
    raise ToolError(f"unknown tool binary {name!r}")


def kwok_stages() -> list[Path]:
    d = tool_dir(TOOLS["kwok"]) / "stages"
    return sorted(d.glob("*.yaml"))


def kwok_crds() -> list[Path]:
    d = tool_dir(TOOLS["kwok"]) / "crds"
    return sorted(d.glob("*.yaml"))


# ------------------------------------------------------------------------ real Zentinel
ZENTINEL_CRATE = "zentinel-proxy"
ZENTINEL_VERSION = "0.6.45"  # the newest release whose rust-version this machine's toolchain (1.95) accepts


def zentinel_root() -> Path:
    return cache_root() / f"zentinel-{ZENTINEL_VERSION}"


def zentinel_binary() -> Path:
    return zentinel_root() / "bin" / "zentinel"


def build_zentinel() -> Path:
    """``cargo install`` the real Zentinel from crates.io (pinned, --locked), cached by version.

    Its build needs ``protoc`` (prost-build); where it is missing and apt-get can run, it is installed.
    """
    binary = zentinel_binary()
    if binary.exists():
        _log(f"zentinel {ZENTINEL_VERSION}: cached at {binary}")
        return binary
    if shutil.which("cargo") is None:
        raise ToolError("cargo is not on PATH; the real Zentinel is built with `cargo install`")
    if shutil.which("protoc") is None:
        if shutil.which("apt-get") and os.geteuid() == 0:
            _log("zentinel: installing protobuf-compiler (protoc), which its build needs")
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "protobuf-compiler"], check=False, stdout=subprocess.DEVNULL
            )
            if shutil.which("protoc") is None:
                subprocess.run(["apt-get", "update", "-q"], check=False, stdout=subprocess.DEVNULL)
                subprocess.run(
                    ["apt-get", "install", "-y", "-q", "protobuf-compiler"], check=False, stdout=subprocess.DEVNULL
                )
        if shutil.which("protoc") is None:
            raise ToolError(
                "protoc is missing (install the Debian package protobuf-compiler); Zentinel's build needs it"
            )
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(cache_root() / "zentinel-target")
    cmd = [
        "cargo",
        "install",
        ZENTINEL_CRATE,
        "--version",
        ZENTINEL_VERSION,
        "--locked",
        "--root",
        str(zentinel_root()),
    ]
    _log(f"zentinel {ZENTINEL_VERSION}: `{' '.join(cmd)}` (first time only; about 10-15 minutes on 2 cores)")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    compiled = 0
    tail: list[str] = []
    last_report = started
    for raw in proc.stdout:
        line = raw.rstrip()
        tail = [*tail[-40:], line]
        if line.lstrip().startswith("Compiling"):
            compiled += 1
        if time.monotonic() - last_report > 20:
            last_report = time.monotonic()
            _log(f"zentinel: {compiled} crates compiled, {int(last_report - started)}s elapsed")
    if proc.wait() != 0 or not binary.exists():
        raise ToolError("cargo install zentinel-proxy failed:\n" + "\n".join(tail))
    _log(f"zentinel {ZENTINEL_VERSION}: built in {int(time.monotonic() - started)}s")
    return binary

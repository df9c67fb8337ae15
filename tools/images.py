"""The container images of a stack: print them, regenerate the committed data, make an air-gap bundle,
and prepare a local kubeflow/manifests tree whose remote bases are vendored (docs/images.md).

    venv/bin/python -m tools.images edge                     # every image of the stack, one per line
    venv/bin/python -m tools.images cloud --node gpu-1       # the pre-pull list of one node
    venv/bin/python -m tools.images --generate               # re-render components/shared/images_data.json
    venv/bin/python -m tools.images bundle edge --out DIR [--dry-run]       # skopeo: one tarball per image
    venv/bin/python -m tools.images manifests --manifests CHECKOUT --bases DIR --out DIR

`--generate` needs kustomize (or kubectl) and helm on PATH and the pinned upstream trees
(../shared/upstream or $KUBEFLOW_K3S_UPSTREAM); the rest works offline from the committed data.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Iterable, Sequence

import yaml

from components.shared import images_plan
from components.kubeflow import kfp_plan, kubeflow_overlay, kubeflow_plan
from stacks import versions
from stacks.settings import KFP_AMD64_ONLY_IMAGES, ConfigError, Settings, parse_settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
UPSTREAM = pathlib.Path(os.environ.get("KUBEFLOW_K3S_UPSTREAM", ROOT.parent / "shared" / "upstream"))

# Settings beyond the checked-in stacks whose Helm values the generator renders too (GPU knobs change
# the operator's operands; NFS adds a release). tests/contract/test_charts.py exercises the same.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("cloud", {"gpu": {"timeSlicing": 4, "mig": "mixed", "installDriver": True},
               "storage": {"default": "longhorn", "nfs": {"server": "10.0.0.5", "path": "/exports/k8s"}},
               "gateway": {"serviceType": "LoadBalancer"}}),
    # The operator's toolkit without its driver: what a `gpu: nvidia` node gets by default on dev and edge
    # (and cloud with toolkit: operator); without it the gpu-operator list is a union of variants.
    ("cloud", {"gpu": {"toolkit": "operator"}}),
    # An arm64 edge needs arm64 builds of KFP's amd64-only images (kubeflow.images; the name is a stand-in).
    ("edge", {"nodes": [{"name": "edge-1", "host": "192.0.2.40", "role": "server", "arch": "arm64", "gpu": "jetson"}],
              "gpu": {"timeSlicing": 2}, "storage": {"default": "longhorn"},
              "kubeflow": {"images": {n: "registry.example.com/arm64/" + n.rsplit("/", 1)[1] for n in KFP_AMD64_ONLY_IMAGES}}}),
]
STACKS = ("dev", "edge", "cloud")

# Remote kustomize bases of kubeflow/manifests 26.03 -> the folder that vendors them (the layout of the
# kubeflow-remote-bases reference data: `<repo>-<ref>/<path>`). `file`: a single manifest, which
# kustomize accepts only inside the kustomization's folder, so it is copied there.
REMOTE_BASES = [
    (re.compile(r"https://github\.com/argoproj/argo-workflows/(?P<path>manifests/[^?\s]+)\?ref=(?P<ref>v3\.7\.3)"),
     "argo-workflows-{ref}/{path}", False),
    (re.compile(r"https://github\.com/kubernetes-sigs/lws//(?P<path>config/[^?\s]+)\?ref=(?P<ref>v0\.7\.0)"),
     "lws-{ref}/{path}", False),
    (re.compile(r"https://github\.com/kubernetes-sigs/jobset/releases/download/(?P<ref>v0\.10\.1)/(?P<path>manifests\.yaml)"),
     "jobset-{ref}/{path}", True),
]
# What `manifests` fetches on a machine with internet when --bases is not given.
REMOTE_BASE_SOURCES = {
    "argo-workflows-v3.7.3": "https://github.com/argoproj/argo-workflows.git",
    "lws-v0.7.0": "https://github.com/kubernetes-sigs/lws.git",
}
BASES_DIR = "remote-bases"


class ToolError(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# Settings of a stack
# --------------------------------------------------------------------------------------------------


def stack_raw(stack: str) -> dict[str, Any]:
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml")
        raise ToolError(f"no stack {stack!r}: {path.name} does not exist (stacks: {', '.join(known)})")
    doc = yaml.safe_load(path.read_text()) or {}
    return {k.split(":", 1)[1]: v for k, v in (doc.get("config") or {}).items()}


def stack_settings(stack: str, overrides: dict[str, Any] | None = None) -> Settings:
    raw = stack_raw(stack)
    raw.update(copy.deepcopy(overrides or {}))
    try:
        return parse_settings(raw, stack)
    except ConfigError as e:
        raise ToolError(" ".join(str(e).split())) from e


def generator_settings() -> list[Settings]:
    return [stack_settings(s) for s in STACKS] + [stack_settings(s, o) for s, o in VARIANTS]


# --------------------------------------------------------------------------------------------------
# A local kubeflow/manifests tree with vendored remote bases
# --------------------------------------------------------------------------------------------------


def rewrite_kustomization(text: str, kdir: pathlib.Path, tree: pathlib.Path, bases: pathlib.Path) -> tuple[str, list[str]]:
    """Replace every known remote base in one kustomization.yaml; returns the text and what it copied."""
    copied: list[str] = []
    out = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("-"):
            for pattern, layout, is_file in REMOTE_BASES:
                m = pattern.search(line)
                if not m:
                    continue
                rel = layout.format(**m.groupdict())
                src = bases / rel
                if not src.exists():
                    raise ToolError(f"remote base {m.group(0)} needs {src} (see docs/images.md, air-gapped Kubeflow)")
                if is_file:
                    local = f"{rel.split('/', 1)[0]}-{src.name}"
                    shutil.copyfile(src, kdir / local)
                    target = local
                else:
                    target = os.path.relpath(tree / BASES_DIR / rel, kdir)
                copied.append(rel)
                line = line[: m.start()] + target + line[m.end():]
        out.append(line)
    return "".join(out), copied


def prepare_manifests(manifests: pathlib.Path, bases: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """Copy a kubeflow/manifests checkout to `out` with its remote bases under `out/remote-bases/` and
    every kustomization pointing there: `kubeflow.manifestsPath: <out>` then renders without network."""
    if not (manifests / "applications").is_dir() or not (manifests / "common").is_dir():
        raise ToolError(f"{manifests} is not a kubeflow/manifests {versions.KUBEFLOW_MANIFESTS_REF} checkout (no applications/, common/)")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(manifests, out, ignore=shutil.ignore_patterns(".git"))
    for folder in sorted(bases.iterdir()) if bases.is_dir() else []:
        if folder.is_dir():
            shutil.copytree(folder, out / BASES_DIR / folder.name, ignore=shutil.ignore_patterns(".git"))
    for k in sorted(out.rglob("kustomization.yaml")):
        if BASES_DIR in k.relative_to(out).parts:
            continue
        text = k.read_text()
        if "https://" not in text:
            continue
        new, copied = rewrite_kustomization(text, k.parent, out, out / BASES_DIR)
        if copied:
            k.write_text(new)
    return out


def fetch_bases(dest: pathlib.Path, dry_run: bool = False) -> list[list[str]]:
    """git commands that vendor the remote bases (run on a machine with internet)."""
    cmds = [["git", "clone", "--depth", "1", "--branch", folder.rsplit("-", 1)[1], url, str(dest / folder)]
            for folder, url in REMOTE_BASE_SOURCES.items()]
    jobset = "https://github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml"
    cmds.append(["curl", "-fsSL", "--create-dirs", "-o", str(dest / "jobset-v0.10.1" / "manifests.yaml"), jobset])
    if not dry_run:
        for c in cmds:
            subprocess.run(c, check=True)
    return cmds


# --------------------------------------------------------------------------------------------------
# Rendering (real kustomize, real helm)
# --------------------------------------------------------------------------------------------------


def kustomize_cmd() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise ToolError("neither kustomize nor kubectl is on PATH (scripts/run-tests.sh installs them into .tools/bin)")


def kustomize(directory: pathlib.Path) -> list[dict]:
    r = subprocess.run([*kustomize_cmd(), str(directory)], capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolError(f"kustomize {directory}: {r.stderr.strip()[:400]}")
    return [d for d in yaml.load_all(r.stdout, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]


def helm_template(release: images_plan.Release, charts: pathlib.Path) -> list[dict]:
    if not shutil.which("helm"):
        raise ToolError("helm is not on PATH (scripts/run-tests.sh installs it into .tools/bin)")
    chart = charts / f"{release.key}-{versions.CHARTS[release.key][2]}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        json.dump(dict(release.values), f)
        f.flush()
        r = subprocess.run(["helm", "template", release.name, str(chart), "-n", release.namespace, "-f", f.name,
                            "--kube-version", versions.KUBERNETES_MINOR], capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolError(f"helm template {release.name}: {r.stderr.strip()[:400]}")
    return [d for d in yaml.load_all(r.stdout, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]


def gpu_kind(key: str) -> str:
    return "jetson" if key == "nvidia-device-plugin" else "nvidia"


def render_stack_kustomize(settings: Settings, tree: pathlib.Path) -> dict[str, set[images_plan.Image]]:
    """{data key: images} of every kustomize path the stack applies, rendered through its real overlays
    (written under .build/kubeflow/images-<stack>/) with kubeflow.manifestsPath = `tree`. Builds run a
    few at a time; an overlay identical to one already built (same text at the same depth) is reused."""
    local = _with_manifests(settings, tree)
    jobs: dict[str, pathlib.Path] = {}
    if settings.kubeflow.mode == "full":
        for planned in kubeflow_plan.plan(local):
            if planned.overlay is not None:
                kubeflow_overlay.write(planned.directory, planned.overlay, kubeflow_plan.PROJECT_ROOT)
            directory = pathlib.Path(planned.directory)
            if not directory.is_absolute():
                directory = kubeflow_plan.PROJECT_ROOT / directory
            jobs[f"kubeflow:{planned.step.path}"] = directory
    elif settings.kubeflow.mode == "pipelines":
        plan = kfp_plan.plan(local)
        kubeflow_overlay.write(plan.env_directory, plan.overlay, kubeflow_plan.PROJECT_ROOT)
        jobs[f"kfp:{kfp_plan.CLUSTER_SCOPED}"] = pathlib.Path(plan.cluster_scoped)
        jobs[f"kfp:{kfp_plan.PLATFORM_AGNOSTIC}"] = kubeflow_plan.PROJECT_ROOT / plan.env_directory
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(jobs, pool.map(_cached_images, jobs.values())))
    return done


_CACHE: dict[tuple[str, str], set[images_plan.Image]] = {}


def _cached_images(directory: pathlib.Path) -> set[images_plan.Image]:
    k = directory / "kustomization.yaml"
    text = k.read_text() if k.exists() and kubeflow_plan.PROJECT_ROOT in directory.parents else str(directory)
    key = (directory.name, text)
    if key not in _CACHE:
        _CACHE[key] = images_plan.images_in(kustomize(directory))
    return _CACHE[key]


def _with_manifests(settings: Settings, tree: pathlib.Path) -> Settings:
    import dataclasses

    kf = dataclasses.replace(settings.kubeflow, manifests_path=str(tree))
    return dataclasses.replace(settings, kubeflow=kf, stack_name=f"images-{settings.stack_name}")


def render_release(release: images_plan.Release, charts: pathlib.Path) -> set[images_plan.Image]:
    return images_plan.images_in(helm_template(release, charts), gpu_kind(release.key))


def _rows(images: Iterable[images_plan.Image]) -> list[list[str]]:
    return sorted([i.ref, i.where] for i in images)


def generate(upstream: pathlib.Path, tree: pathlib.Path | None = None) -> dict[str, Any]:
    """The data file's content, rendered from the upstream trees."""
    if not upstream.is_dir():
        raise ToolError(f"upstream reference data not found at {upstream} (set KUBEFLOW_K3S_UPSTREAM)")
    with tempfile.TemporaryDirectory() as tmp:
        if tree is None:
            tree = prepare_manifests(upstream / "kubeflow-manifests-26.03", upstream / "kubeflow-remote-bases",
                                     pathlib.Path(tmp) / "manifests")
        kustomize_data: dict[str, list[list[str]]] = {}
        helm_data: dict[str, dict[str, list[list[str]]]] = {}
        for s in generator_settings():
            for key, images in render_stack_kustomize(s, tree).items():
                kustomize_data.setdefault(key, _rows(images))
            for rel in images_plan.releases(s):
                helm_data.setdefault(rel.key, {}).setdefault(rel.digest, _rows(render_release(rel, upstream / "charts")))
    return {
        "comment": "Generated by `python -m tools.images --generate` from the pinned upstream renders; do not edit.",
        "kubeflow_manifests": versions.KUBEFLOW_MANIFESTS_REF,
        "charts": {k: v[2] for k, v in sorted(versions.CHARTS.items())},
        "kustomize": dict(sorted(kustomize_data.items())),
        "helm": {k: dict(sorted(v.items())) for k, v in sorted(helm_data.items())},
    }


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


# --------------------------------------------------------------------------------------------------
# Air-gap bundle (skopeo)
# --------------------------------------------------------------------------------------------------


def archive_name(ref: str) -> str:
    """A file name per image: registry/path:tag -> registry_path_tag.tar (stable, unique per ref)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", ref) + ".tar"


def bundle_commands(images: Sequence[str], out: pathlib.Path, arch: str) -> list[list[str]]:
    """skopeo copies, one docker-archive per image, for one architecture, tagged with its reference so
    that `ctr images import` (and K3s) restores the name the pods ask for."""
    return [
        ["skopeo", "copy", "--retry-times", "3", "--override-os", "linux", "--override-arch", arch,
         f"docker://{ref}", f"docker-archive:{out / archive_name(ref)}:{ref}"]
        for ref in images
    ]


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _print_list(args) -> int:
    settings = stack_settings(args.stack)
    stack = images_plan.stack_images(settings)
    if args.node:
        names = [n.name for n in settings.nodes]
        if args.node not in names:
            raise ToolError(f"stack {args.stack} has no node {args.node!r} (nodes: {', '.join(names)})")
        refs = images_plan.images_for(settings, settings.node(args.node))
    else:
        refs = images_plan.all_images(settings)
    print("\n".join(refs))
    if stack.inexact:
        print(f"note: values of {', '.join(stack.inexact)} were not rendered by the generator; their images are every "
              "rendered variant of the chart (run `python -m tools.images --generate`)", file=sys.stderr)
    if stack.missing:
        print(f"note: no image data for {', '.join(stack.missing)} (run `python -m tools.images --generate`)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bundle"]:
            p = argparse.ArgumentParser(prog="python -m tools.images bundle")
            p.add_argument("stack")
            p.add_argument("--out", required=True, type=pathlib.Path)
            p.add_argument("--arch", help="amd64 or arm64 (default: the stack's node architectures, one bundle each)")
            p.add_argument("--dry-run", action="store_true", help="print the skopeo commands, run nothing")
            a = p.parse_args(argv[1:])
            settings = stack_settings(a.stack)
            archs = [a.arch] if a.arch else sorted({n.arch for n in settings.nodes})
            if len(archs) > 1:
                raise ToolError(f"stack {a.stack} mixes architectures ({', '.join(archs)}): pass --arch and make one bundle each")
            cmds = bundle_commands(images_plan.all_images(settings), a.out, archs[0])
            if a.dry_run:
                print("\n".join(shlex.join(c) for c in cmds))
                return 0
            if not shutil.which("skopeo"):
                raise ToolError("skopeo is not installed (apt-get install skopeo); --dry-run prints the commands")
            a.out.mkdir(parents=True, exist_ok=True)
            for c in cmds:
                if not pathlib.Path(c[-1].split(":", 2)[1]).exists():
                    subprocess.run(c, check=True)
            print(f"{len(cmds)} image archives in {a.out}; set k3s.airgap.platformImages: {a.out}")
            return 0
        if argv[:1] == ["manifests"]:
            p = argparse.ArgumentParser(prog="python -m tools.images manifests")
            p.add_argument("--manifests", required=True, type=pathlib.Path, help=f"a kubeflow/manifests {versions.KUBEFLOW_MANIFESTS_REF} checkout")
            p.add_argument("--bases", type=pathlib.Path, help="vendored remote bases; fetched with git/curl when absent")
            p.add_argument("--out", required=True, type=pathlib.Path)
            p.add_argument("--dry-run", action="store_true")
            a = p.parse_args(argv[1:])
            bases = a.bases
            if bases is None:
                bases = a.out.with_name(a.out.name + "-bases")
                cmds = fetch_bases(bases, dry_run=a.dry_run)
                if a.dry_run:
                    print("\n".join(shlex.join(c) for c in cmds))
                    return 0
            prepare_manifests(a.manifests, bases, a.out)
            print(f"set kubeflow.manifestsPath: {a.out}")
            return 0
        p = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__.split("\n\n")[0])
        p.add_argument("stack", nargs="?")
        p.add_argument("--node")
        p.add_argument("--generate", action="store_true", help=f"rewrite {images_plan.DATA_FILE.name} from the upstream renders")
        p.add_argument("--upstream", type=pathlib.Path, default=UPSTREAM)
        a = p.parse_args(argv)
        if a.generate:
            images_plan.DATA_FILE.write_text(dump(generate(a.upstream)))
            images_plan.data.cache_clear()
            print(f"wrote {images_plan.DATA_FILE.relative_to(ROOT)}")
            return 0
        if not a.stack:
            raise ToolError("name a stack (dev, edge, cloud, ...) or pass --generate")
        return _print_list(a)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

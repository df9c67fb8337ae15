"""The README and docs/ say only what exists: every link resolves, every quick-start command names a real
stack, file, config key and output, and every config key the docs name is one the settings model knows."""

from __future__ import annotations

import re

import pytest

from stacks import profiles
from stacks.settings import ConfigError, parse_settings
from tests import harness

ROOT = harness.ROOT
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+ (.+)$", path.read_text(), re.M)}


def unknown(path: str) -> list[str]:
    """The 'unknown ...' problems settings report for a config key path like `nodes[].extraConfig` or
    `storage.longhorn.replicas` (an empty list: the model knows the key)."""
    raw: dict = {"profile": "laptop", "nodes": [{"name": "dev", "role": "server", "connection": "local"}]}
    parts = path.split(".")
    where = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.endswith("[]"):
            name = part[:-2]
            if name != "nodes":
                where[name] = [{"name": "alice", "email": "alice@example.com"}]
            if last:
                break
            where = where[name][0]
        elif last:
            where[part] = "x"
        else:
            where = where.setdefault(part, {})
    try:
        parse_settings(raw)
    except ConfigError as err:
        return [f"{k}: {m}" for k, m in err.problems if m.startswith("unknown")]
    return []


def test_the_known_key_check_sees_typos():
    assert unknown("k3s.version") == [] and unknown("nodes[].hostKey") == []
    assert unknown("k3s.versoin") and unknown("nodes[].hostkey") and unknown("gpus")


def test_readme_is_short_and_has_a_table_of_contents():
    text = README.read_text()
    assert len(text.splitlines()) <= 130, "the README is a front page; details go to docs/"
    assert "**Contents:**" in text
    for heading in ("Quick start", "The two commands", "Outputs", "Read more"):
        assert f"## {heading}" in text
    for stack in harness.STACKS:
        assert re.search(rf"^### {stack}\b", text, re.M), f"no quick start for {stack}"
    # What dev does to the machine, said where the command is.
    quick = text.split("### dev", 1)[1].split("### edge", 1)[0]
    for words in ("as root", "systemd", "11 GiB", "passwordless sudo"):
        assert words in quick


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_links_resolve(doc):
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"^[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: {target}"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{doc.name}: no heading for #{anchor} in {path.name}"


def shell_lines(text: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line.split(" #", 1)[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_quick_start_commands_name_what_exists(runs):
    lines = shell_lines(README.read_text())
    assert "bash scripts/run-tests.sh" in lines and any(re.match(r"pulumi up -s dev$", l) for l in lines)
    outputs = set().union(*(run.exports for run in runs.values()))
    for line in lines:
        for stack in re.findall(r"(?:stack select|-s) (\w+)", line):
            assert (ROOT / f"Pulumi.{stack}.yaml").exists(), line
        for script in re.findall(r"\b((?:scripts|tools)/[\w./-]+)", line):
            assert (ROOT / script).exists(), line
        config = re.search(r"pulumi config set (?:--secret |--path )*'?([\w.\[\]-]+)'?", line)
        if config:
            key = re.sub(r"\[\d+\]", "[]", config.group(1))
            assert unknown(key) == [], line
        output = re.search(r"pulumi stack output (\w+)", line)
        if output:
            assert output.group(1) in outputs, line


@pytest.mark.parametrize("doc", [README, ROOT / "docs" / "configuration.md"], ids=lambda p: p.name)
def test_the_outputs_named_exist(runs, doc):
    outputs = set().union(*(run.exports for run in runs.values()))
    table = doc.read_text().split("## Outputs", 1)[1].split("\n## ", 1)[0]
    named = {n for row in table.splitlines() if row.startswith("| `") for n in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert named and named <= outputs, named - outputs


def doc_keys(text: str) -> set[str]:
    """Config keys in the first column of every `| key | ...` table (`a.b` / `c` means a.b and a.c)."""
    keys: set[str] = set()
    table = False
    for row in text.splitlines():
        if row.startswith("| key |"):
            table = True
            continue
        if not row.startswith("|"):
            table = False
            continue
        if not table or row.startswith("|---"):
            continue
        cell = row.split("|")[1]
        found = re.findall(r"`([^`]+)`", cell)
        parent = found[0].rsplit(".", 1)[0] + "." if found and "." in found[0] else ""
        for key in found:
            keys.add(key if "." in key or not parent else parent + key)
    return keys


def test_every_key_the_docs_name_is_in_the_settings_model():
    keys = doc_keys((ROOT / "docs" / "configuration.md").read_text())
    assert len(keys) > 40 and "k3s.extraConfig" in keys and "sshPrivateKey" in keys
    expanded = set()
    for key in keys:
        if "<name>" in key:
            expanded |= {key.replace("<name>", c) for c in profiles.KUBEFLOW_COMPONENTS}
        else:
            expanded.add(key)
    problems = {key: unknown(key) for key in sorted(expanded) if unknown(key)}
    assert not problems, problems


def test_every_dotted_key_the_readme_names_is_in_the_settings_model():
    text = README.read_text()
    keys = {k for k in re.findall(r"`((?:ssh|nodes\[\]|k3s|storage|tls|gateway|gpu|kubeflow|preflight)\.[\w.\[\]]+)`", text)}
    assert "k3s.apiEndpoint" in keys and "tls.host" in keys
    problems = {key: unknown(key) for key in sorted(keys) if unknown(key)}
    assert not problems, problems

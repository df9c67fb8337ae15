"""The GitHub Actions workflows: valid, naming the commands and stacks, secrets only from `secrets.*`,
nothing secret printed. (What GitHub does with them is not testable offline; their content is.)"""

from __future__ import annotations

import re

import pytest
import yaml

from tests import harness

WORKFLOWS = harness.ROOT / ".github" / "workflows"
PR = WORKFLOWS / "pull-request.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
SECRET_ENV = {"PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN", "SSH_PRIVATE_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}
PULUMI_VERSION = re.search(r"^pulumi==(\S+)$", (harness.ROOT / "requirements.txt").read_text(), re.M).group(1)


def load(path):
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(job):
    return job.get("steps") or []


def action_steps(job, command=None):
    return [s for s in steps(job) if str(s.get("uses", "")).startswith("pulumi/actions@")
            and (command is None or (s.get("with") or {}).get("command") == command)]


def every_env(data):
    """(where, name, value) for each env entry at workflow, job and step level."""
    for name, value in (data.get("env") or {}).items():
        yield "workflow", name, value
    for job_name, job in data["jobs"].items():
        for name, value in (job.get("env") or {}).items():
            yield job_name, name, value
        for step in steps(job):
            for name, value in (step.get("env") or {}).items():
                yield f"{job_name}/{step.get('name')}", name, value


@pytest.fixture(scope="module", params=[PR, DEPLOY], ids=["pull-request", "deploy"])
def workflow(request):
    return request.param, load(request.param)


def test_workflow_files_are_valid_yaml_with_jobs(workflow):
    path, data = workflow
    assert data["name"] and data["on"] and data["jobs"], path
    for name, job in data["jobs"].items():
        assert job.get("runs-on") and steps(job), f"{path.name}: job {name}"
        assert job.get("timeout-minutes"), f"{path.name}: job {name} has no timeout"
        for step in steps(job):
            assert ("uses" in step) != ("run" in step), f"{path.name}: {step}"
            if "uses" in step:
                assert re.search(r"@v\d+$", step["uses"]), f"{step['uses']} is not pinned to a major version"


def test_pull_requests_run_the_tests_then_preview_every_stack_with_the_policy_pack():
    data = load(PR)
    assert set(data["on"]) == {"pull_request"}, "pull_request only (never pull_request_target: it exposes secrets to forks)"
    test, preview = data["jobs"]["test"], data["jobs"]["preview"]
    assert any(s.get("run", "").strip() == ".ci/run" for s in steps(test))
    assert "scripts/run-tests.sh" in (harness.ROOT / ".ci" / "run").read_text()
    assert "pytest" in (harness.ROOT / "scripts" / "run-tests.sh").read_text()
    assert preview["needs"] == "test"
    assert preview["strategy"]["matrix"]["stack"] == list(harness.STACKS)
    assert preview["strategy"]["fail-fast"] is False
    assert sorted(p.name for p in harness.ROOT.glob("Pulumi.*.yaml")) == sorted(f"Pulumi.{s}.yaml" for s in harness.STACKS)
    assert preview["permissions"]["pull-requests"] == "write"
    (step,) = action_steps(preview, "preview")
    args = step["with"]
    assert args["diff"] is True and args["comment-on-pr"] is True
    assert args["stack-name"] == "${{ env.STACK }}" and "matrix.stack" in preview["env"]["STACK"]
    assert args["policyPacks"] == "./policy"
    assert (harness.ROOT / "policy" / "PulumiPolicy.yaml").is_file()


def test_merges_to_main_run_up_per_stack_behind_an_environment_approval():
    data = load(DEPLOY)
    assert data["on"]["push"]["branches"] == ["main"]
    up = data["jobs"]["up"]
    assert up["needs"] == "test"
    assert up["environment"] == "${{ matrix.stack }}", "each stack waits for its environment's reviewers"
    stacks = up["strategy"]["matrix"]["stack"]
    assert stacks and set(stacks) <= set(harness.STACKS)
    assert "dev" not in stacks, "dev installs K3s on the machine running pulumi: never on a CI runner"
    assert up["concurrency"]["cancel-in-progress"] is False
    (step,) = action_steps(up, "up")
    assert step["with"]["policyPacks"] == "./policy"
    assert not action_steps(up, "destroy")


def test_backend_comes_from_repository_settings(workflow):
    path, data = workflow
    for job in data["jobs"].values():
        for step in action_steps(job):
            if (step.get("with") or {}).get("command"):
                assert step["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
        if action_steps(job):
            assert job["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
            assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"


def test_secrets_come_only_from_github_secrets(workflow):
    path, data = workflow
    seen = set()
    for where, name, value in every_env(data):
        if name in SECRET_ENV:
            assert value == f"${{{{ secrets.{name} }}}}", f"{path.name} {where}: {name} must be ${{{{ secrets.{name} }}}}"
            seen.add(name)
        elif "secrets." in str(value):
            pytest.fail(f"{path.name} {where}: {name} carries a secret under an unexpected name")
    assert {"PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN", "SSH_PRIVATE_KEY"} <= seen
    text = path.read_text()
    assert not re.search(r"BEGIN [A-Z ]*PRIVATE KEY", text)


def test_nothing_secret_is_printed(workflow):
    path, data = workflow
    text = path.read_text()
    assert "--show-secrets" not in text and "set -x" not in text
    for job in data["jobs"].values():
        for step in steps(job):
            script = step.get("run", "")
            assert "secrets." not in script, "interpolate secrets through env, never into the script text"
            for name in SECRET_ENV & set(re.findall(r"[A-Z_]+", script)):
                # Scripts never touch a secret, except to hand the SSH key to Pulumi on stdin, as a secret
                # config value (not an argument: arguments show in the process list).
                assert name == "SSH_PRIVATE_KEY", script
                assert re.fullmatch(r"printf '%s\\n' \"\$SSH_PRIVATE_KEY\" \| pulumi config set --secret sshPrivateKey\s*", script)
        for step in action_steps(job):
            if (step.get("with") or {}).get("command"):
                assert step["with"]["suppress-outputs"] is True


def test_pulumi_cli_matches_the_sdk(workflow):
    path, data = workflow
    for job in data["jobs"].values():
        for step in action_steps(job):
            assert str(step["with"]["pulumi-version"]) == PULUMI_VERSION

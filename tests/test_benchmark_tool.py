"""tools/benchmark.py runs and reports what it promises (no timing is asserted: it is not a timed test)."""

from __future__ import annotations

import json

from tools import benchmark


def test_benchmark_reports_time_resources_and_critical_path(capsys):
    assert benchmark.main(["edge", "-n", "1", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["stack"] == "edge" and row["samples"] == 1
    assert row["evaluation_ms_median"] > 0 and row["resources"] > 0
    assert row["critical_path_length"] == len(row["critical_path"]) > 0
    assert "|" in benchmark.table([row])


def test_benchmark_reports_the_images_pre_pull_moves_off_the_critical_path(capsys):
    assert benchmark.main(["dev", "-n", "1", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["images"] > 10 and row["prepulled_images"] == row["images"]  # one node takes everything
    assert row["prepull_commands"] == 1
    # The list is a leaf of the graph: the chain of waits keeps its length.
    assert row["critical_path_length_without_prepull"] == row["critical_path_length"]

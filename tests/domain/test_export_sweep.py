"""The sweeper removes what exports that died mid-write left behind, and nothing else."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from chatsvc.jobs.runner import sweep_once
from tests.fixtures.turns import World


async def test_the_sweeper_removes_the_temporary_files_of_dead_exports(
    world: World, tmp_path: Path
) -> None:
    settings = world.services.settings.model_copy(update={"artifact_dir": str(tmp_path)})
    ctx = dataclasses.replace(world.services.jobs, settings=settings)
    long_ago = time.time() - 3 * settings.job_lease_seconds
    stale = tmp_path / ".export-1.csv.k2j3h4.part"
    stale.write_bytes(b"half a CSV")
    os.utime(stale, (long_ago, long_ago))
    writing = tmp_path / ".export-2.csv.a8d7f6.part"  # an export writing right now
    writing.write_bytes(b"the first rows")
    finished = tmp_path / "export-3.csv"
    finished.write_bytes(b"a whole CSV")
    os.utime(finished, (long_ago, long_ago))

    report = await sweep_once(ctx)

    assert report.recovered["orphaned_export_files"] == 1
    assert not stale.exists()
    assert writing.read_bytes() == b"the first rows"
    assert finished.read_bytes() == b"a whole CSV"
    again = await sweep_once(ctx)
    assert again.recovered["orphaned_export_files"] == 0

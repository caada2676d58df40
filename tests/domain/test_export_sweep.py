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


async def test_the_sweeper_removes_export_files_past_their_retention(
    world: World, tmp_path: Path
) -> None:
    settings = world.services.settings.model_copy(
        update={"artifact_dir": str(tmp_path), "artifact_retention_hours": 24.0}
    )
    ctx = dataclasses.replace(world.services.jobs, settings=settings)
    two_days_ago = time.time() - 48 * 3600
    expired = tmp_path / "export-1.csv"
    expired.write_bytes(b"an old CSV")
    os.utime(expired, (two_days_ago, two_days_ago))
    recent = tmp_path / "export-2.csv"
    recent.write_bytes(b"a new CSV")
    other = tmp_path / "notes.txt"  # not an export's: never the sweeper's to remove
    other.write_bytes(b"kept")
    os.utime(other, (two_days_ago, two_days_ago))

    report = await sweep_once(ctx)

    assert report.recovered["expired_export_artifacts"] == 1
    assert not expired.exists()
    assert recent.read_bytes() == b"a new CSV" and other.read_bytes() == b"kept"

    forever = dataclasses.replace(
        ctx, settings=settings.model_copy(update={"artifact_retention_hours": 0.0})
    )
    os.utime(recent, (two_days_ago, two_days_ago))
    assert (await sweep_once(forever)).recovered["expired_export_artifacts"] == 0
    assert recent.exists()

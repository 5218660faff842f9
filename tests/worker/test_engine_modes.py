"""The engine's read-first modes in-process (no Celery), against the simulator over loopback
HTTP and a real Redis: backup, match-values, plan and undo, and a backup that survives a
worker dying between its delete and the recording of the result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import IMAGES, JOB, TEST_PROJECT, results, setup
from worker import keys
from worker.engine import run_chunk
from worker.jobs import Mode
from worker.store import ResultStore

Start = Callable[..., Any]


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """Image n holds a=v, and b=v except every third image, which holds b=other; every fifth
    image holds no b at all."""
    lines = ["image_id,key,value"]
    for n, image in enumerate(IMAGES):
        lines.append(f"{image},a,v")
        if n % 5 == 0:
            continue
        lines.append(f"{image},b,{'other' if n % 3 == 0 else 'v'}")
    path = tmp_path / "seed.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def current_b(n: int) -> str | None:
    if n % 5 == 0:
        return None
    return "other" if n % 3 == 0 else "v"


async def observed(aredis: Any) -> dict[int, str | None]:
    return await ResultStore(aredis).chunk_observed(JOB, 0)


async def test_backup_keeps_every_value_before_deleting(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, backup=True)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    kept = await observed(aredis)
    assert kept == {
        ref: value
        for n in range(len(IMAGES))
        for ref, value in ((n * 2, "v"), (n * 2 + 1, current_b(n)))
    }
    assert {r[0] for r in (await results(aredis)).values()} == {"deleted"}
    assert all(server.sim.store.tags_of(TEST_PROJECT, i) == {} for i in IMAGES)
    assert server.sim.stats.by_status == {200: 30, 204: 30}  # a read, then a delete, per image


async def test_a_backup_survives_a_worker_dying_after_its_delete(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, backup=True)
    await run_chunk(ctx, JOB, 0)
    before = await observed(aredis)
    # As if the worker died after the deletes, before recording: the results are gone, and
    # the tags too. The chunk is worked again; its reads now find nothing.
    await aredis.delete(
        keys.final(JOB), keys.chunk_results(JOB, 0), keys.counts(JOB), keys.done_chunks(JOB)
    )
    await aredis.hset(keys.job(JOB), "state", "running")
    assert await run_chunk(ctx, JOB, 0) == "worked"
    assert await observed(aredis) == before  # the first read's values stand
    assert {r[0] for r in (await results(aredis)).values()} == {"deleted"}


async def test_match_values_sends_only_keys_holding_the_csv_value(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, backup=True, match_values=True)
    await run_chunk(ctx, JOB, 0)
    found = await results(aredis)
    for n, image in enumerate(IMAGES):
        differs = current_b(n) == "other"
        assert found[str(n * 2 + 1)][0] == ("value_differs" if differs else "deleted")
        assert server.sim.store.tags_of(TEST_PROJECT, image) == ({"b": "other"} if differs else {})


async def test_a_plan_reads_and_changes_nothing(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    gone = IMAGES[7]
    del server.sim.store.images[(TEST_PROJECT, gone)]
    ctx = await setup(aredis, session, server, mode=Mode.PLAN)
    await run_chunk(ctx, JOB, 0)
    found = await results(aredis)
    expected_b = {None: "absent", "v": "would_delete", "other": "value_differs"}
    for n in range(len(IMAGES)):
        if n == 7:
            assert found[str(n * 2)][0] == found[str(n * 2 + 1)][0] == "image_not_found"
            continue
        assert found[str(n * 2)][0] == "would_delete"
        assert found[str(n * 2 + 1)][0] == expected_b[current_b(n)]
    assert set(server.sim.stats.by_status) == {200, 404}
    assert sum(server.sim.store.deletions.values()) == 0
    job = await ctx.store.load_job(JOB)
    assert job is not None
    assert job.state.value == "completed"


async def test_undo_creates_what_is_absent_and_keeps_what_is_set(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    # The chunk's rows ask for a=v and b=v on every image: "put back" in an undo.
    ctx = await setup(aredis, session, server, mode=Mode.UNDO, undo_of="x")
    for n, image in enumerate(IMAGES):
        if n % 2:
            server.sim.store.images[(TEST_PROJECT, image)].pop("a")
    await run_chunk(ctx, JOB, 0)
    found = await results(aredis)
    for n, image in enumerate(IMAGES):
        assert found[str(n * 2)][0] == "restored"
        b_status = {None: "restored", "v": "restored", "other": "kept_newer"}[current_b(n)]
        assert found[str(n * 2 + 1)][0] == b_status
        tags = server.sim.store.tags_of(TEST_PROJECT, image)
        assert tags == {"a": "v", "b": "other" if current_b(n) == "other" else "v"}

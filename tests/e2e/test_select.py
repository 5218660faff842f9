"""``tagsweep select`` end to end: the command against a simulator process over HTTP, seeded with
3,000 images (three pages of 1000), Redis for the shared rate limit, and real workers for run.

The expected rows are computed here from the seed, by predicates written for the test (not the
simulator's or the command's code).
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO, TEST_PROJECT, SimProcess, new_image_id, run_cli, worker_env

Tags = dict[str, str]
Row = tuple[str, str, str, str]


@dataclass(frozen=True)
class Image:
    name: str
    tags: Tags


def make_seed(count: int = 3000) -> dict[str, Image]:
    """Images with env (staging 40%, dev 20%, prod 20%, test 10%, none 10%), owner (85%),
    tmp-build / tmp-cache / cost-center now and then, and about 5% with no tag at all; names
    web-NNNN or db-NNNN."""
    rng = random.Random(18)
    seed: dict[str, Image] = {}
    for n in range(count):
        name = f"{'web' if n % 3 else 'db'}-{n:04d}"
        if rng.random() < 0.05:
            seed[new_image_id()] = Image(name, {})
            continue
        tags: Tags = {}
        env = rng.choices(["staging", "dev", "prod", "test", None], [40, 20, 20, 10, 10])[0]
        if env:
            tags["env"] = env
        if rng.random() < 0.85:
            tags["owner"] = f"team-{rng.randint(1, 4)}"
        for key, share in (("tmp-build", 0.3), ("tmp-cache", 0.2), ("cost-center", 0.25)):
            if rng.random() < share:
                tags[key] = str(rng.randint(100, 999))
        if not tags:
            tags["owner"] = "team-1"
        seed[new_image_id()] = Image(name, tags)
    return seed


SEED = make_seed()


def write_seed(path: Path, seed: dict[str, Image]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "key", "value", "name"])
        for image_id, image in seed.items():
            for key, value in image.tags.items() or [("", "")]:
                writer.writerow([image_id, key, value, image.name])
    return path


def expected_rows(
    seed: dict[str, Image], matches: Callable[[Image], bool], removes: Callable[[str], bool]
) -> set[Row]:
    return {
        (image_id, key, value, TEST_PROJECT)
        for image_id, image in seed.items()
        if matches(image)
        for key, value in image.tags.items()
        if removes(key)
    }


def read_rows(text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == ["image_id", "key", "value", "project_id"]
    return [(r[0], r[1], r[2], r[3]) for r in reader]


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    matches: Callable[[Image], bool]
    removes: Callable[[str], bool]


CASES = {
    "tags": Case(
        ("--tag", "env=staging,dev", "--tag", "owner"),
        lambda i: i.tags.get("env") in ("staging", "dev") and "owner" in i.tags,
        lambda key: key in ("env", "owner"),
    ),
    "tags_any": Case(
        ("--tag-any", "tmp-build", "--tag-any", "env=test", "--keys", "tmp-build,env"),
        lambda i: "tmp-build" in i.tags or i.tags.get("env") == "test",
        lambda key: key in ("tmp-build", "env"),
    ),
    # K1,K2 is two keys, as two --tag-any would be (it was one key holding a comma: no match).
    "tags_any_comma": Case(
        ("--tag-any", "tmp-build,cost-center", "--keys", "tmp-build,cost-center"),
        lambda i: "tmp-build" in i.tags or "cost-center" in i.tags,
        lambda key: key in ("tmp-build", "cost-center"),
    ),
    "not_tags": Case(
        ("--tag", "env", "--not-tag", "env=prod", "--not-tag", "owner=team-1"),
        lambda i: "env" in i.tags
        and not (i.tags["env"] == "prod" and i.tags.get("owner") == "team-1"),
        lambda key: key == "env",
    ),
    "not_tags_any": Case(
        ("--tag", "owner", "--not-tag-any", "env=prod", "--not-tag-any", "cost-center",
         "--key-pattern", "^tmp-"),
        lambda i: "owner" in i.tags and i.tags.get("env") != "prod" and "cost-center" not in i.tags,
        lambda key: key.startswith("tmp-"),
    ),
    "name_contains": Case(
        ("--name-contains", "web-1", "--tag", "env", "--key-pattern", "env|cache"),
        lambda i: "web-1" in i.name and "env" in i.tags,
        lambda key: re.search("env|cache", key) is not None,
    ),
    "keys_without_filter_keys": Case(
        ("--tag", "env=prod", "--keys", "owner,cost-center"),
        lambda i: i.tags.get("env") == "prod",
        lambda key: key in ("owner", "cost-center"),
    ),
}  # fmt: skip


@pytest.fixture
def sim(start_sim_process: Callable[..., SimProcess], tmp_path: Path) -> Callable[..., SimProcess]:
    seed = write_seed(tmp_path / "seed.csv", SEED)
    return lambda *args: start_sim_process(seed, *args)


def select(env: dict[str, str], *args: str, cwd: Path) -> tuple[int, list[Row], str]:
    result = run_cli(env, "select", *args, cwd=cwd, timeout_s=180)
    rows = read_rows(result.stdout) if result.returncode == 0 else []
    return result.returncode, rows, result.stderr


@pytest.mark.parametrize("name", list(CASES))
def test_select_writes_exactly_the_rows_the_seed_says(
    name: str, sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """Each filter kind, and --keys / --key-pattern / the keys of --tag."""
    case = CASES[name]
    server = sim()
    code, rows, err = select(worker_env(e2e_redis_url, server), *case.args, cwd=tmp_path)
    assert code == 0, err
    expected = expected_rows(SEED, case.matches, case.removes)
    assert len(rows) == len(set(rows))  # no row twice
    assert set(rows) == expected
    matched = sum(1 for image in SEED.values() if case.matches(image))
    assert f"images matched  {matched:,}" in err
    assert f"rows written    {len(expected):,}" in err
    assert f"pages           {-(-matched // 1000)} in 1 pass(es)" in err


def test_without_any_tag_lists_untagged_images_and_writes_no_row(
    sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """Untagged images have nothing to remove: the CSV is its header, the total says how many."""
    server = sim()
    env = worker_env(e2e_redis_url, server)
    code, rows, err = select(env, "--without-any-tag", "--keys", "env", "-o", "-", cwd=tmp_path)
    assert code == 0, err
    assert rows == []
    untagged = sum(1 for image in SEED.values() if not image.tags)
    assert untagged > 50
    assert f"images matched  {untagged:,}" in err


def test_pages_answered_429_or_503_are_retried_and_the_csv_is_still_exact(
    sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """A fifth of the calls throttled and a fifth unavailable, the dice seeded so that the count
    passes and the two pages get a 429 and two 503s in a row: every page comes through in the
    end, and nothing is missed or doubled."""
    server = sim("--fail-rate", "429=0.2", "--fail-rate", "503=0.2", "--random-seed", "15")
    case = CASES["tags"]
    code, rows, err = select(worker_env(e2e_redis_url, server), *case.args, cwd=tmp_path)
    assert code == 0, err
    assert sorted(rows) == sorted(expected_rows(SEED, case.matches, case.removes))
    by_status = server.stats()["calls_by_status"]
    assert by_status == {"200": 3, "429": 1, "503": 2}
    found = re.search(r"\((\d+) retried\)", err)
    assert found, err
    retried = int(found.group(1))
    assert retried == by_status["429"] + by_status["503"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [arg for n in range(11) for arg in ("--tag-any", f"k{n}")],
            "--tag-any: 11 keys, the API takes at most 10",
        ),
        (["--tag", "env=" + ",".join(map(str, range(11)))], "has 11 values"),
        (["--not-tag", "env=a,a", "--tag", "x"], "--not-tag: key 'env' repeats a value"),
        (["--tag", "env", "--tag", "env=b"], "--tag: key 'env' given more than once"),
        (["--tag", "=x"], "--tag '=x': the key is empty"),
        (["--without-any-tag", "--tag", "env"], "cannot be combined with tag filters"),
        (["--tag", "env", "--keys", "a", "--key-pattern", "b"], "--keys or --key-pattern"),
        (["--tag", "env", "--key-pattern", "(unclosed"], "--key-pattern '(unclosed'"),
        (["--tag-any", "env"], "which tags to remove?"),
    ],
)
def test_refused_options_exit_2_with_one_line_before_any_call(
    args: list[str],
    message: str,
    sim: Callable[..., SimProcess],
    e2e_redis_url: str,
    tmp_path: Path,
) -> None:
    """Filters beyond the API's limits, and options that make no selection."""
    server = sim()
    result = run_cli(worker_env(e2e_redis_url, server), "select", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert server.stats()["calls_by_status"] == {}


def test_a_listing_that_changes_while_paged_is_read_again_until_two_passes_agree(
    sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """An image appears after the first page (the simulator's churn hook): select says that
    total_count changed, reads again, and the CSV holds the new image too."""
    server = sim()
    server.post("/_sim/churn", {"tags": {"env": "staging", "owner": "team-9"}, "pages": 1})
    case = CASES["tags"]
    code, rows, err = select(worker_env(e2e_redis_url, server), *case.args, cwd=tmp_path)
    assert code == 0, err
    (added,) = server.get("/_sim/churn")["added"]
    matched = sum(1 for image in SEED.values() if case.matches(image))
    assert f"total_count changed during paging ({matched:,}, then {matched + 1:,})" in err
    assert "in 2 pass(es)" in err
    expected = expected_rows(SEED, case.matches, case.removes)
    expected |= {(added, "env", "staging", TEST_PROJECT), (added, "owner", "team-9", TEST_PROJECT)}
    assert sorted(rows) == sorted(expected)


def test_a_listing_that_never_settles_is_refused_and_nothing_is_written(
    sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """Images keep appearing on every page: after five passes select gives up, in one line."""
    server = sim()
    server.post("/_sim/churn", {"tags": {"env": "staging", "owner": "x"}, "pages": 10_000})
    env = worker_env(e2e_redis_url, server)
    result = run_cli(env, "select", *CASES["tags"].args, "-o", "out.csv", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        f"tagsweep: could not get a stable listing of project {TEST_PROJECT} in 5 passes "
        r"\(the last: total_count changed during paging \([\d,]+, then [\d,]+\)\); "
        "nothing written",
        last,
    )
    assert result.stderr.count("reading the listing again") == 4
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "out.csv.partial").exists()


def test_a_call_refused_for_good_ends_select_with_one_line_and_no_file(
    sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """403 is not retried: exit 1, the reason in one line."""
    server = sim("--fail-rate", "403=1")
    env = worker_env(e2e_redis_url, server)
    result = run_cli(env, "select", "--tag", "env", "-o", "out.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"tagsweep: the count of project {TEST_PROJECT} failed: 403 APIGW.0302: "
        "The IAM user is forbidden in the currently selected region. (after 1 attempt(s))"
    ]
    assert not (tmp_path / "out.csv").exists()


def test_select_output_fed_to_run_deletes_exactly_those_tags(
    sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """select, then run (real workers): the selected tags are gone, every other tag stays."""
    server = sim()
    env = worker_env(e2e_redis_url, server)
    case = CASES["not_tags_any"]
    chosen = run_cli(env, "select", *case.args, "-o", "cleanup.csv", cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    ran = run_cli(env, "run", "cleanup.csv", "--rate", "1000", "--report", "r.csv", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    removed = expected_rows(SEED, case.matches, case.removes)
    assert len(removed) > 500
    gone = {(image_id, key) for image_id, key, _, _ in removed}
    for image_id, image in SEED.items():
        left = {k: v for k, v in image.tags.items() if (image_id, k) not in gone}
        assert server.tags(TEST_PROJECT, image_id) == left


def readme_block(containing: str) -> str:
    """The README's ``sh`` code block that holds ``containing``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    (block,) = [b for b in blocks if containing in b]
    return block


def test_the_readme_select_example_passes_as_written(tmp_path: Path) -> None:
    """select, plan, run --backup, undo, verbatim from the README in a clean directory with no
    REDIS_URL (so the private Redis of ./.tagsweep/); only the simulator's port is changed to
    a free one, since other suites may hold 8471."""
    block = readme_block("tagsweep select --tag env=staging")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = block.replace("8471", str(port))
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_")) and k != "REDIS_URL"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
         + script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (REPO / "examples" / "sample.csv").open(newline="", encoding="utf-8") as handle:
        sample = list(csv.DictReader(handle))
    staging = {r["image_id"] for r in sample if r["key"] == "env" and r["value"] == "staging"}
    expected = {
        (r["image_id"], r["key"], r["value"], "0123456789abcdef0123456789abcdef")
        for r in sample
        if r["image_id"] in staging and r["key"] in ("env", "note")
    }
    written = read_rows((tmp_path / "staging.csv").read_text(encoding="utf-8"))
    assert sorted(written) == sorted(expected)
    assert len(written) == 54
    assert "images matched  48" in result.stderr
    for report, status in (("plan.csv", "would_delete"), ("run.csv", "deleted"),
                           ("undo.csv", "restored")):  # fmt: skip
        with (tmp_path / report).open(newline="", encoding="utf-8") as handle:
            statuses = [row["status"] for row in csv.DictReader(handle)]
        assert statuses == [status] * 54, report


def test_credentials_and_project_come_from_the_sdk_profile_too(
    sim: Callable[..., SimProcess], e2e_redis_url: str, tmp_path: Path
) -> None:
    """No AK/SK or project in the environment: the profile file's, as everywhere else."""
    server = sim()
    env = worker_env(e2e_redis_url, server)
    profile = tmp_path / "credentials"
    profile.write_text(
        f"[basic]\nak = {env.pop('HUAWEICLOUD_SDK_AK')}\nsk = {env.pop('HUAWEICLOUD_SDK_SK')}\n"
        f"project_id = {env.pop('HUAWEICLOUD_SDK_PROJECT_ID')}\n"
    )
    env["HUAWEICLOUD_SDK_CREDENTIALS_FILE"] = str(profile)
    case = CASES["keys_without_filter_keys"]
    code, rows, err = select(env, *case.args, cwd=tmp_path)
    assert code == 0, err
    assert set(rows) == expected_rows(SEED, case.matches, case.removes)

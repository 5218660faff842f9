"""The limiter's scripts name their arguments and answers once, in the dataclasses next to
them: the Lua reads ARGV and builds its reply by those names, never by position."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import pytest

from worker.limits.reserve import RESERVE, Reservation, ReserveArgs
from worker.limits.scripts import ScriptArgs, ScriptReply
from worker.limits.throttle import THROTTLED, Throttled, ThrottledArgs
from worker.limits.tuning import RateTuning

SCRIPTS = [
    pytest.param(RESERVE, ReserveArgs, Reservation, id="RESERVE"),
    pytest.param(THROTTLED, ThrottledArgs, Throttled, id="THROTTLED"),
]


@pytest.mark.parametrize(("script", "args", "reply"), SCRIPTS)
def test_the_lua_reads_every_argument_by_its_name_and_none_by_position(
    script: str, args: type[ScriptArgs], reply: type[ScriptReply]
) -> None:
    """Only the generated first line indexes ARGV; each field is read by name in the body."""
    prelude, body = script.split("\n", 1)
    assert re.findall(r"ARGV\[\d+\]", body) == []
    assert len(re.findall(r"ARGV\[\d+\]", prelude)) == len(fields(args))  # type: ignore[arg-type]
    unused = [f.name for f in fields(args) if f"argv.{f.name}" not in body]  # type: ignore[arg-type]
    assert unused == []


@pytest.mark.parametrize(("script", "args", "reply"), SCRIPTS)
def test_every_answer_is_built_through_the_named_reply(
    script: str, args: type[ScriptArgs], reply: type[ScriptReply]
) -> None:
    """No bare ``return {...}`` list: the reply's order is its dataclass's."""
    assert re.findall(r"return\s*\{", script) == []
    assert "return reply" in script or "return answer(" in script


def test_a_reply_of_the_wrong_length_is_refused_not_misread() -> None:
    with pytest.raises(ValueError, match="Reservation: 8 values, expected 9"):
        Reservation.from_reply(["0", "1", 1, "0", "0", "0", 0, 0])
    reply = ["5", "20.5", 2, "7", "600", "30000", 1, 0, "31"]
    assert Reservation.from_reply(reply) == Reservation(
        5.0, 20.5, 2, 7.0, 600, 30000.0, True, False, 31.0
    )


def test_the_tuning_writes_one_value_per_named_argument() -> None:
    tuning = RateTuning()
    reserve: list[Any] = tuning.reserve_args("", 40, 3)
    assert len(reserve) == len(fields(ReserveArgs))
    assert dict(zip([f.name for f in fields(ReserveArgs)], reserve, strict=True))["accepted"] == 3
    assert len(tuning.throttled_args("", None, None)) == len(fields(ThrottledArgs))


async def test_a_script_whose_reply_misses_a_field_fails_loudly(aredis: Any) -> None:
    """``reply`` refuses a table without one of the fields (rather than a shorter list)."""
    script = aredis.register_script(Throttled.lua() + "return reply{rate_per_s = '1'}")
    with pytest.raises(Exception, match="reply without cut"):
        await script(keys=[], args=[])

"""Worker settings from the environment: the egress group and source address (#23)."""

from __future__ import annotations

import socket

import pytest

from worker.errors import ConfigError
from worker.settings import Settings


def test_the_egress_group_is_the_host_unless_named() -> None:
    """Hosts behind one NAT gateway name one group; alone, a host is its own."""
    assert Settings.from_env({}).egress_id == socket.gethostname()
    named = Settings.from_env({"TAGSWEEP_EGRESS_ID": "nat-eu-1"})
    assert named.egress_id == "nat-eu-1"


def test_a_source_address_is_taken_and_a_bad_one_is_one_line_naming_it() -> None:
    assert Settings.from_env({}).source_address is None
    bound = Settings.from_env({"TAGSWEEP_SOURCE_ADDRESS": "127.0.0.2"})
    assert bound.source_address == "127.0.0.2"
    with pytest.raises(ConfigError, match=r"TAGSWEEP_SOURCE_ADDRESS='my-host' is not an IP"):
        Settings.from_env({"TAGSWEEP_SOURCE_ADDRESS": "my-host"})


def test_an_unknown_setting_is_still_refused() -> None:
    with pytest.raises(ConfigError, match="TAGSWEEP_EGRES_ID"):
        Settings.from_env({"TAGSWEEP_EGRES_ID": "x"})

"""``orchscan receive`` options: help, a bad address, a port already taken."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from orchscan.cli import EXIT_INPUT, main


def test_help_says_what_is_served_and_the_limits() -> None:
    text = CliRunner().invoke(main, ["receive", "--help"]).output
    options = (
        "--listen",
        "--out",
        "--max-request-bytes",
        "--max-file-bytes",
        "--max-file-age",
        "--max-in-flight",
    )
    for expected in ("POST /v1/traces", "SIGTERM", *options):
        assert expected in text, expected


def test_a_bad_listen_address_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["receive", "--listen", "localhost", "--out", str(tmp_path)])
    assert result.exit_code == EXIT_INPUT and "'localhost' is not HOST:PORT" in result.output


def test_a_port_already_taken_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["receive", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path)]
        )
    assert result.exit_code == EXIT_INPUT
    assert f"cannot listen on 127.0.0.1:{port}" in result.output

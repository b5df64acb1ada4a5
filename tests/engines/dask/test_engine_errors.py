"""Choosing an engine that cannot run: a clear message, exit status 2, and no report written."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import dask
import pytest
from click.testing import CliRunner, Result
from dask_cluster import dask_cluster
from paths import SAMPLE
from replay import Reply, replay

from orchscan.analyzer.thresholds import Thresholds
from orchscan.budget import MemoryBudget
from orchscan.cli import main
from orchscan.engines.registry import EngineError
from orchscan.runner import scan_traces


def _scan(out: Path, *options: str) -> Result:
    return CliRunner().invoke(main, ["scan", str(SAMPLE / "traces"), "--out", str(out), *options])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_an_unreachable_scheduler_is_named(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = _scan(tmp_path / "out", "--engine", "dask", "--dask-scheduler", address)
    assert result.exit_code == 2
    assert f"orchscan: cannot reach the Dask scheduler at {address}" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_scheduler_without_workers_is_named(tmp_path: Path) -> None:
    with (
        dask_cluster(tmp_path, workers=0) as cluster,
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
    ):
        result = _scan(tmp_path / "out", "--engine", "dask", "--dask-scheduler", cluster.address)
    assert result.exit_code == 2
    assert f"orchscan: the Dask scheduler at {cluster.address} has no workers (waited 2 s)" in result.output
    assert not (tmp_path / "out").exists()


def test_the_scheduler_address_is_read_from_the_environment(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = CliRunner(env={"DASK_SCHEDULER_ADDRESS": address}).invoke(
            main, ["scan", str(SAMPLE / "traces"), "--out", str(tmp_path / "out"), "--engine", "dask"]
        )
    assert result.exit_code == 2 and f"cannot reach the Dask scheduler at {address}" in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--engine", "spark"], "Invalid value for '--engine': 'spark' is not one of 'local', 'dask'"),
        (["--dask-scheduler", "tcp://127.0.0.1:8786"], "--dask-scheduler needs --engine dask"),
    ],
    ids=["unknown-engine", "scheduler-without-dask"],
)
def test_engine_options_that_do_not_fit_are_usage_errors(
    options: list[str], message: str, tmp_path: Path
) -> None:
    result = _scan(tmp_path / "out", *options)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_inputs_at_urls_need_the_dask_engine(tmp_path: Path) -> None:
    result = _scan(tmp_path / "out", "--engine", "local")
    assert result.exit_code == 0
    url = (SAMPLE / "traces").as_uri()
    result = CliRunner().invoke(main, ["scan", url, "--out", str(tmp_path / "urls")])
    assert result.exit_code == 2
    assert f"orchscan: {url}: inputs at URLs are read by the workers of --engine dask" in result.output
    assert not (tmp_path / "urls").exists()


def test_live_sources_are_refused_by_the_dask_engine_before_anything_is_fetched(tmp_path: Path) -> None:
    with replay(lambda request: Reply(b"{}")) as server:
        label = f"jaeger+{server.url}?service=frontend"
        for inputs in ([label], [str(SAMPLE / "traces"), label]):
            result = CliRunner().invoke(
                main, ["scan", *inputs, "--engine", "dask", "--since", "1h", "--out", str(tmp_path / "out")]
            )
            assert result.exit_code == 2, result.output
            assert (
                f"{label}: live sources are fetched by this machine; --engine dask reads files"
                in result.output
            )
        assert server.received == []
    assert not (tmp_path / "out").exists()


def test_the_runner_refuses_live_sources_on_the_dask_engine_too() -> None:
    class Source:
        name = "tempo+http://tempo:3200"

    with pytest.raises(EngineError, match=r"^tempo\+http://tempo:3200: live sources are fetched by this"):
        scan_traces(
            [],
            sources=[Source()],  # type: ignore[list-item]
            fmt=None,
            budget=MemoryBudget(1 << 30, 1),
            work_dir=None,
            specs=None,
            service_map=None,
            workflows=(),
            thresholds=Thresholds(),
            engine="dask",
        )


def test_storage_urls_are_inputs_and_live_sources_that_do_not_parse_stay_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    result = CliRunner().invoke(main, ["scan", "jaeger+ftp://host", "--engine", "dask", "--out", out])
    assert result.exit_code == 2 and "use jaeger+http:// or jaeger+https://" in result.output
    result = CliRunner().invoke(main, ["inspect", "s3://bucket/traces"])
    assert (
        result.exit_code == 2 and "neither an existing file or folder nor a live source URL" in result.output
    )


def test_without_dask_installed_the_engine_says_what_to_install(tmp_path: Path) -> None:
    # A fresh interpreter in which neither Dask nor fsspec can be imported: the local engine
    # still scans, the dask engine says what to install.
    code = (
        "import sys\n"
        "for name in ('dask', 'distributed', 'fsspec'): sys.modules[name] = None\n"
        "from orchscan.cli import main\n"
        "main(['scan', sys.argv[1], '--out', sys.argv[2], '--format', 'json', *sys.argv[3:]])"
    )
    runs = {}
    for engine in ("local", "dask"):
        out = tmp_path / engine
        command = [sys.executable, "-c", code, str(SAMPLE / "traces"), str(out), "--engine", engine]
        runs[engine] = subprocess.run(command, capture_output=True, text=True, check=False)
    assert runs["local"].returncode == 0 and (tmp_path / "local" / "findings.json").exists()
    assert runs["dask"].returncode == 2
    assert "orchscan: --engine dask needs Dask: pip install 'orchscan[dask]'" in runs["dask"].stderr
    assert not (tmp_path / "dask").exists()


def test_inputs_at_urls_of_an_unknown_protocol_are_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["scan", "nosuchprotocol://bucket/traces", "--engine", "dask", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "orchscan: nosuchprotocol://bucket/traces: Protocol not known: nosuchprotocol" in result.output

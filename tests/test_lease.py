"""One writer per output and date (issue 15, item 3), and the output checks a job makes (item 2): leases
taken atomically, a second writer refused at once naming the holder, a dead run's lease taken over, renewal;
an existing directory we did not write, an empty path and an output inside an input refused by a real job."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.fs import HadoopFS
from pipelines.job_runtime import run_job
from pipelines.lease import Lease, LeaseHeld, LeaseKeeper, lease_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fs(spark):
    return HadoopFS(spark)


def _evaluate(args):
    return run_job("evaluate", args)


def _write_lease(path: Path, **fields) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "owner": "someone",
                "job": "train_gbdt_lr",
                "host": platform.node(),
                "pid": 1,
                "started": time.time() - 60,
                "expires": time.time() + 600,
                **fields,
            }
        )
    )


def test_second_writer_is_refused_naming_the_holder_until_release(fs, tmp_path):
    target = f"{tmp_path}/out/ds=2026-11-20"
    first = Lease(fs, target, "run-a", "train_gbdt_lr")
    first.acquire()
    assert Path(lease_path(target)) == tmp_path / "out" / "_leases" / "ds=2026-11-20.lease"
    with pytest.raises(LeaseHeld) as held:
        Lease(fs, target, "run-b", "evaluate").acquire()
    message = str(held.value)
    assert message.startswith(f"{target} is being written by job train_gbdt_lr (run run-a")
    assert f"host {platform.node()}, pid {os.getpid()}" in message and "lease until 20" in message
    Lease(fs, f"{tmp_path}/out/ds=2026-11-21", "run-b", "evaluate").acquire()  # another date is free
    first.release()
    Lease(fs, target, "run-b", "evaluate").acquire()


def test_only_one_of_many_simultaneous_writers_wins(fs, tmp_path):
    target = f"{tmp_path}/race"
    for attempt in range(5):
        barrier = threading.Barrier(6)
        results: list[str] = []

        def contend(owner: str) -> None:
            lease = Lease(fs, f"{target}{attempt}", owner, "job")
            barrier.wait()
            try:
                lease.acquire()
                results.append("won")
            except LeaseHeld:
                results.append("refused")

        threads = [threading.Thread(target=contend, args=(f"owner{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["refused"] * 5 + ["won"]


def test_expired_or_dead_holders_lease_is_taken_over(fs, tmp_path):
    expired = f"{tmp_path}/expired"
    _write_lease(Path(lease_path(expired)), pid=os.getppid(), expires=time.time() - 1)  # alive but expired
    Lease(fs, expired, "me", "job").acquire()
    assert json.loads(Path(lease_path(expired)).read_text())["owner"] == "me"

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{tmp_path}/dead"
    _write_lease(Path(lease_path(dead)), pid=int(done.stdout))  # not expired, but its process is gone
    Lease(fs, dead, "me", "job").acquire()

    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie.kill()
    time.sleep(0.5)  # killed, not yet reaped: a zombie
    _write_lease(Path(lease_path(f"{tmp_path}/zombie")), pid=zombie.pid)
    Lease(fs, f"{tmp_path}/zombie", "me", "job").acquire()
    zombie.wait()

    alive = f"{tmp_path}/alive"
    _write_lease(Path(lease_path(alive)), pid=os.getppid())  # live holder, not expired
    with pytest.raises(LeaseHeld):
        Lease(fs, alive, "me", "job").acquire()
    other_host = f"{tmp_path}/other_host"
    _write_lease(Path(lease_path(other_host)), host="elsewhere", pid=int(done.stdout))
    with pytest.raises(LeaseHeld):  # a pid on another host says nothing
        Lease(fs, other_host, "me", "job").acquire()


def test_keeper_renews_until_released(fs, tmp_path):
    keeper = LeaseKeeper(fs, "owner", "job", ttl_s=0.9)
    target = f"{tmp_path}/renewed"
    keeper.hold(target)
    first = json.loads(Path(lease_path(target)).read_text())["expires"]
    time.sleep(1.2)
    assert json.loads(Path(lease_path(target)).read_text())["expires"] > first + 0.2
    keeper.release_all()
    assert not Path(lease_path(target)).exists() and not (tmp_path / "_leases").exists()


# --- a real job's outputs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    path = tmp_path_factory.mktemp("scores") / "scores.csv"
    path.write_text("label,score\n" + "".join(f"{i % 2},{(i % 7) / 7}\n" for i in range(40)))
    return path


def _args(scores, output: str, *more: str) -> list[str]:
    return [
        "--set",
        f"input.path={scores}",
        "--set",
        "input.format=csv",
        "--set",
        "input.options={header: true}",
        "--set",
        "input.schema=label INT, score DOUBLE",
        "--set",
        f"output.path={output}",
        *more,
    ]


def test_job_refuses_a_directory_it_did_not_write(spark, scores, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert _evaluate(_args(scores, str(mine))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: output {mine} exists and is not a committed output of this package (no _SUCCESS "
        f"with its _metrics.json); refusing to replace it: choose another output path or move its "
        f"contents away"
    )
    assert (mine / "thesis.tex").read_text() == "years of work" and sorted(os.listdir(mine)) == ["thesis.tex"]
    # our own output is replaced, and a dated run writes beside the user's file without touching it
    assert _evaluate(_args(scores, str(tmp_path / "ours"))) == 0
    assert _evaluate(_args(scores, str(tmp_path / "ours"))) == 0
    assert _evaluate(_args(scores, str(mine), "--run-date", "2026-11-20")) == 0
    assert (mine / "thesis.tex").exists() and (mine / "ds=2026-11-20" / "_SUCCESS").exists()


def test_job_refuses_empty_output_and_output_inside_its_input(spark, scores, tmp_path, capsys):
    assert _evaluate(_args(scores, "")) == 1
    assert "error: output 'report' of job evaluate: the path is empty" in capsys.readouterr().err
    inside = f"{scores.parent}/report"
    assert _evaluate(["--set", f"input.path={scores.parent}", *_args(scores, inside)[2:]]) == 1
    assert f"error: output 'report' ({inside}) overlaps input {scores.parent}" in capsys.readouterr().err


def test_job_with_a_declared_output_held_by_another_run_stops_at_once(spark, fs, scores, tmp_path, capsys):
    target = f"{tmp_path}/held/ds=2026-11-20"
    holder = LeaseKeeper(fs, "other-run", "evaluate")
    holder.hold(target)
    try:
        started = time.time()
        code = _evaluate(_args(scores, f"{tmp_path}/held", "--run-date", "2026-11-20", "--output", target))
        assert code == 1 and time.time() - started < 10
        assert f"error: {target} is being written by job evaluate (run other-run" in capsys.readouterr().err
        assert not (tmp_path / "held" / "_staging").exists()
        # without --output the lease is met when the output is staged: still refused, nothing committed
        assert _evaluate(_args(scores, f"{tmp_path}/held", "--run-date", "2026-11-20")) == 1
        assert not Path(target).exists()
    finally:
        holder.release_all()
    assert _evaluate(_args(scores, f"{tmp_path}/held", "--run-date", "2026-11-20", "--output", target)) == 0
    assert not Path(lease_path(target)).exists()

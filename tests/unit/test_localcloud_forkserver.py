"""The fork server: its protocol with a real zygote (this interpreter), the Popen surface of a forked
worker (pipes, poll, wait, kill, terminate), the fidelity guards and the fallbacks to a plain spawn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton.localcloud import forkserver
from baton.localcloud.forkserver import ForkedProcess, ForkServers, Zygote, ZygoteError

# What a worker script does here: answer one line on stdin with what it sees, log to stderr, and
# keep state in a preloaded module (which must start pristine in every worker).
WORKER = textwrap.dedent("""\
    import json, os, sys
    line = sys.stdin.readline()
    json.baton_count = getattr(json, "baton_count", 0) + 1
    sys.stdout.write(json.dumps({
        "line": line.strip(), "cwd": os.getcwd(), "who": os.environ.get("WHO"),
        "count": json.baton_count, "argv": sys.argv, "path0": sys.path[0],
        "imported_at_start": "{module}" in sys.modules,
    }) + "\\n")
    sys.stdout.flush()
    print("a log line", file=sys.stderr)
    if line.strip() == "wait":
        sys.stdin.readline()
    sys.exit(int(os.environ.get("EXIT_CODE", "0")))
""")

# Reads a setting at import, as some libraries do; the zygote must notice.
READS_AT_IMPORT = "import os\nLEVEL = os.environ.get('BATON_TEST_LEVEL')\n"


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """A folder on the zygote's PYTHONPATH holding a module that reads a setting at import."""
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "reads_at_import.py").write_text(READS_AT_IMPORT)
    return folder


@pytest.fixture
def script(tmp_path: Path) -> str:
    path = tmp_path / "worker" / "_worker.py"
    path.parent.mkdir()
    path.write_text(WORKER.replace("{module}", "reads_at_import"))
    return str(path)


@pytest.fixture
def code(tmp_path: Path) -> str:
    folder = tmp_path / "code"
    folder.mkdir()
    return str(folder)


def base_env(lib: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(lib), "BATON_FORK_SERVER": "1"}


@pytest.fixture
def zygote(lib: Path) -> Iterator[Zygote]:
    started = Zygote(sys.executable, base_env(lib), modules=("json", "reads_at_import", "no_such_module"))
    yield started
    started.stop()


def function_env(lib: Path, **extra: str) -> dict[str, str]:
    return {**base_env(lib), "AWS_LAMBDA_FUNCTION_NAME": "fn", **extra}


def exchange(process: ForkedProcess | subprocess.Popen[str], line: str = "hello") -> dict[str, object]:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(line + "\n")
    answer: dict[str, object] = json.loads(process.stdout.readline())
    return answer


def test_the_zygote_reports_what_it_preloaded_and_what_the_imports_read(zygote: Zygote) -> None:
    assert zygote.loaded == ["json", "reads_at_import"]  # a module that does not import is skipped
    assert zygote.env_reads == {"BATON_TEST_LEVEL": None}
    assert {"json", "reads_at_import"} <= zygote.modules


# A worker that builds a DynamoDB client and loads two data files twice, noting which files it
# parsed from disk itself: a file the zygote parsed is handed to its first read only.
BOTOCORE_WORKER = textwrap.dedent("""\
    import json, sys
    from botocore import loaders
    parsed_here = []
    parse = loaders.JSONFileLoader._load_file
    def recording(self, full_path, open_method):
        data = parse(self, full_path, open_method)
        if data is not None:
            parsed_here.append(full_path.split("/data/")[-1])
        return data
    loaders.JSONFileLoader._load_file = recording
    import boto3
    boto3.client("dynamodb", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    first = sorted(parsed_here)
    second = loaders.Loader().load_data("endpoints")
    with open(loaders.Loader().load_data_with_path("partitions")[1] + ".json") as file:
        same = json.load(file) == loaders.Loader().load_data("partitions")
    sys.stdout.write(json.dumps({"client": first, "again": sorted(parsed_here[len(first):]),
                                 "endpoints": bool(second), "same": same}) + "\\n")
""")


def test_botocore_data_parsed_in_the_zygote_is_handed_once_to_each_worker(
        lib: Path, tmp_path: Path, code: str) -> None:
    started = Zygote(sys.executable, base_env(lib), modules=("botocore.loaders",))
    try:
        assert {"botocore data dynamodb/2012-08-10/service-2", "botocore data endpoints"} <= set(
            started.warmed)
        script = tmp_path / "botocore_worker.py"
        script.write_text(BOTOCORE_WORKER)
        answers = [json.loads(started.fork(str(script), code, function_env(lib)).stdout.readline())
                   for _ in range(2)]
    finally:
        started.stop()
    for answer in answers:  # every worker gets its own copy, once
        assert answer["client"] == []  # the client was built from the zygote's parsed files
        # Read again, a file is parsed from disk as botocore would (the first copy may have changed).
        assert answer["again"] == ["endpoints.json", "partitions.json", "partitions.json"]
        assert answer["endpoints"] and answer["same"]


def test_trafilaturas_every_language_stoplist_is_built_once_in_the_zygote(
        lib: Path, tmp_path: Path, code: str) -> None:
    started = Zygote(sys.executable, base_env(lib), modules=("trafilatura",))
    script = tmp_path / "stoplist_worker.py"
    script.write_text(textwrap.dedent("""\
        import json, sys
        from justext.core import define_stoplist
        from trafilatura import external
        cached = define_stoplist.cache_info().currsize
        sys.stdout.write(json.dumps({"words": len(external.JT_STOPLIST or ()), "cached": cached,
                                     "hit": define_stoplist(external.JT_STOPLIST) is not None
                                     and define_stoplist.cache_info().hits == 1}) + "\\n")
    """))
    try:
        assert started.warmed == ["justext stoplist (every language)"]
        answer = json.loads(started.fork(str(script), code, function_env(lib)).stdout.readline())
    finally:
        started.stop()
    # The worker starts with the stoplist and its lower-cased set: its first short page builds neither.
    assert answer["words"] > 100_000 and answer["cached"] == 1 and answer["hit"]


def test_a_forked_worker_runs_the_script_with_its_own_env_cwd_and_pipes(zygote: Zygote, lib: Path,
                                                                         script: str, code: str) -> None:
    worker = zygote.fork(script, code, function_env(lib, WHO="first"))
    assert worker.poll() is None
    assert exchange(worker) == {"line": "hello", "cwd": code, "who": "first", "count": 1,
                                "argv": [script], "path0": os.path.dirname(script),
                                "imported_at_start": True}
    assert worker.stderr is not None and worker.stderr.readline() == "a log line\n"
    assert worker.wait(timeout=10) == 0
    assert worker.returncode == 0 and worker.poll() == 0


def test_workers_do_not_share_module_state_or_environment(zygote: Zygote, lib: Path, script: str,
                                                          code: str) -> None:
    first = zygote.fork(script, code, function_env(lib, WHO="first"))
    second = zygote.fork(script, code, function_env(lib, WHO="second"))
    assert (exchange(first)["who"], exchange(second)["who"]) == ("first", "second")
    third = zygote.fork(script, code, function_env(lib, WHO="third"))
    assert exchange(third)["count"] == 1  # the others' counters stayed in their own processes
    for worker in (first, second, third):
        assert worker.wait(timeout=10) == 0


def test_a_worker_exit_code_comes_from_the_zygote(zygote: Zygote, lib: Path, script: str, code: str) -> None:
    worker = zygote.fork(script, code, function_env(lib, EXIT_CODE="3"))
    exchange(worker)
    assert worker.wait(timeout=10) == 3


@pytest.mark.parametrize(("stop", "expected"), [("kill", -signal.SIGKILL), ("terminate", -signal.SIGTERM)])
def test_kill_and_terminate_stop_a_busy_worker(zygote: Zygote, lib: Path, script: str, code: str,
                                               stop: str, expected: int) -> None:
    worker = zygote.fork(script, code, function_env(lib))
    exchange(worker, "wait")  # now blocked reading its stdin
    with pytest.raises(subprocess.TimeoutExpired):
        worker.wait(timeout=0.2)
    getattr(worker, stop)()
    assert worker.wait(timeout=10) == expected
    worker.kill()  # a worker that has exited is not signalled again (its pid may be reused)
    assert worker.poll() == expected


def test_a_worker_ends_when_its_stdin_closes(zygote: Zygote, lib: Path, script: str, code: str) -> None:
    worker = zygote.fork(script, code, function_env(lib))
    exchange(worker, "wait")
    assert worker.stdin is not None
    worker.stdin.close()  # as when the cloud dies: no other process holds the pipe open
    assert worker.wait(timeout=10) == 0


def test_a_zygote_that_cannot_start_is_an_error(lib: Path) -> None:
    with pytest.raises(ZygoteError, match=r"did not start|no answer"):
        Zygote("/bin/false", base_env(lib))


def servers(lib: Path, **extra: str) -> ForkServers:
    return ForkServers(base_env=base_env(lib) | extra, modules=("json", "reads_at_import"))


def test_fork_servers_fork_python_workers(lib: Path, script: str, code: str) -> None:
    cloud = servers(lib)
    try:
        worker = cloud.start_worker("python3.12", sys.executable, script, code, function_env(lib, WHO="w"))
        assert isinstance(worker, ForkedProcess)
        assert exchange(worker)["who"] == "w"
        assert worker.wait(timeout=10) == 0
    finally:
        cloud.stop()


def spawned_plainly(worker: object) -> bool:
    if isinstance(worker, subprocess.Popen):
        worker.communicate("bye\n", timeout=30)
        return True
    return False


def test_turned_off_every_worker_is_a_new_interpreter(lib: Path, script: str, code: str) -> None:
    cloud = servers(lib, BATON_FORK_SERVER="0")
    assert spawned_plainly(cloud.start_worker("python3.12", sys.executable, script, code, function_env(lib)))


def test_a_function_setting_what_a_preload_read_at_import_is_not_forked(
        lib: Path, script: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    cloud = servers(lib)
    try:
        env = function_env(lib, BATON_TEST_LEVEL="DEBUG")
        assert spawned_plainly(cloud.start_worker("python3.12", sys.executable, script, code, env))
        assert "read BATON_TEST_LEVEL at import" in capsys.readouterr().err
    finally:
        cloud.stop()


def test_a_function_bundling_a_preloaded_module_is_not_forked(
        lib: Path, script: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    Path(code, "json").mkdir()
    cloud = servers(lib)
    try:
        env = function_env(lib)
        assert spawned_plainly(cloud.start_worker("python3.12", sys.executable, script, code, env))
        assert "its code has its own json" in capsys.readouterr().err
    finally:
        cloud.stop()


def test_functions_on_the_same_first_layer_share_a_zygote_unless_a_later_layer_shadows_a_preload(
        lib: Path, tmp_path: Path, script: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    first, tools, shadowing = (tmp_path / name for name in ("first", "tools", "shadowing"))
    for layer, module in ((first, "base_mod"), (tools, "tool_mod"), (shadowing, "json")):
        (layer / "python").mkdir(parents=True)
        (layer / "python" / f"{module}.py").write_text("")
    cloud = servers(lib)
    try:
        alone = cloud.start_worker("python3.12", sys.executable, script, code,
                                   function_env(lib, _LAMBDA_LAYERS_DIRS=str(first)))
        with_tools = cloud.start_worker("python3.12", sys.executable, script, code, function_env(
            lib, _LAMBDA_LAYERS_DIRS=os.pathsep.join(map(str, (first, tools)))))
        assert isinstance(alone, ForkedProcess) and isinstance(with_tools, ForkedProcess)
        assert len(cloud._zygotes) == 1  # one zygote, preloaded from the first layer, for both
        assert exchange(with_tools)["line"] == "hello" and exchange(alone)["line"] == "hello"
        # A later layer's own json would come first on sys.path: that worker is not forked.
        assert spawned_plainly(cloud.start_worker("python3.12", sys.executable, script, code, function_env(
            lib, _LAMBDA_LAYERS_DIRS=os.pathsep.join(map(str, (first, shadowing))))))
        assert "a layer after its first has its own json" in capsys.readouterr().err
    finally:
        cloud.stop()


def test_a_zygote_with_no_worker_left_is_stopped_when_another_forks(
        lib: Path, tmp_path: Path, script: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    layers = [tmp_path / f"layer{index}" for index in range(2)]
    for layer in layers:
        layer.mkdir()
    cloud = servers(lib)
    try:
        def fork_on(layer: Path) -> ForkedProcess:
            worker = cloud.start_worker("python3.12", sys.executable, script, code,
                                        function_env(lib, _LAMBDA_LAYERS_DIRS=str(layer)))
            assert isinstance(worker, ForkedProcess)
            exchange(worker)
            return worker

        fork_on(layers[0])
        left = fork_on(layers[1])
        [unused] = [zygote for key, zygote in cloud._zygotes.items() if key[1] == str(layers[1])]
        assert unused is not None and left.wait(timeout=10) == 0
        fork_on(layers[0])  # within UNUSED_ZYGOTE_S of its last fork: kept
        assert unused.process.poll() is None
        monkeypatch.setattr(forkserver, "UNUSED_ZYGOTE_S", 0.0)
        fork_on(layers[0])  # no zygote starts: the fork itself retires the unused one
        assert unused.process.wait(timeout=10) is not None
        [kept] = cloud._zygotes.values()
        assert [key[1] for key in cloud._zygotes] == [str(layers[0])]
        assert kept is not None and kept.process.poll() is None
    finally:
        cloud.stop()


def test_a_zygote_with_no_worker_left_is_stopped_when_another_starts(
        lib: Path, tmp_path: Path, script: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkserver, "UNUSED_ZYGOTE_S", 0.0)
    layers = [tmp_path / f"layer{index}" for index in range(3)]
    for layer in layers:
        layer.mkdir()
    cloud = servers(lib)
    try:
        def fork_on(layer: Path, line: str = "hello") -> ForkedProcess:
            worker = cloud.start_worker("python3.12", sys.executable, script, code,
                                        function_env(lib, _LAMBDA_LAYERS_DIRS=str(layer)))
            assert isinstance(worker, ForkedProcess)
            exchange(worker, line)
            return worker

        def zygote_of(layer: Path) -> Zygote:
            found = [zygote for key, zygote in cloud._zygotes.items() if key[1] == str(layer)]
            assert len(found) == 1 and found[0] is not None
            return found[0]

        busy = fork_on(layers[0], "wait")  # keeps running: its zygote stays
        kept = zygote_of(layers[0])
        done = fork_on(layers[1])
        replaced = zygote_of(layers[1])
        assert done.wait(timeout=10) == 0
        fork_on(layers[2])
        assert replaced.process.poll() is not None  # stopped when the next one started
        assert kept.process.poll() is None
        assert sorted(key[1] for key in cloud._zygotes) == [str(layers[0]), str(layers[2])]
        assert busy.stdin is not None
        busy.stdin.write("bye\n")
        assert busy.wait(timeout=10) == 0
    finally:
        cloud.stop()


def test_a_zygote_that_dies_leaves_its_workers_running_and_plain_spawns_after(
        lib: Path, script: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    cloud = servers(lib)
    try:
        forked = cloud.start_worker("python3.12", sys.executable, script, code, function_env(lib))
        assert isinstance(forked, ForkedProcess)
        zygote = next(iter(cloud._zygotes.values()))
        assert zygote is not None
        zygote.process.kill()
        zygote.process.wait()
        assert spawned_plainly(cloud.start_worker("python3.12", sys.executable, script, code,
                                                  function_env(lib)))
        assert "zygote" in capsys.readouterr().err
        assert exchange(forked)["line"] == "hello"  # the orphan still serves its invocation
        assert forked.wait(timeout=10) == forkserver.ORPHANED_EXIT  # its status left with the zygote
    finally:
        cloud.stop()


def test_other_runtimes_are_spawned_plainly(lib: Path, script: str, code: str) -> None:
    cloud = servers(lib)
    assert spawned_plainly(cloud.start_worker("nodejs20.x", sys.executable, script, code, function_env(lib)))
    assert cloud._zygotes == {}


def test_layer_paths_are_in_the_worker_scripts_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "python").mkdir(parents=True)
    second.mkdir()
    assert forkserver.layer_paths(os.pathsep.join([str(first), str(second)])) == [
        str(second), str(first), str(first / "python")]


def test_a_preload_reading_the_whole_environment_forks_nothing(lib: Path, script: str, code: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (lib / "copies_environment.py").write_text("import os\nSNAPSHOT = dict(os.environ)\n")
    cloud = ForkServers(base_env=base_env(lib), modules=("copies_environment",))
    try:
        env = function_env(lib)
        assert spawned_plainly(cloud.start_worker("python3.12", sys.executable, script, code, env))
        assert "read the whole environment" in capsys.readouterr().err
    finally:
        cloud.stop()

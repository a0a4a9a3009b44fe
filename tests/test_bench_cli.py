"""T0: the bench times `pulumi up` as the CLI a user runs, and reads the engine's events from the
CLI's event log while it runs (a stand-in CLI here writes the log in steps, as the engine does)."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from infra.automation import TempStack
from infra.bench.cli import EventLogReader, timed_up
from smoke_tests.run import CommandError

URN = "urn:pulumi:b::kubeflow-stacks::kubernetes:core/v1:Namespace::kubeflow"

FAKE_PULUMI = textwrap.dedent(f"""\
    #!{sys.executable}
    import json, os, sys, time
    args = sys.argv[1:]
    with open(os.environ["FAKE_ARGS"], "w") as f:
        json.dump(args, f)
    if os.environ.get("FAKE_FAIL"):
        print("error: the update failed", file=sys.stderr)
        sys.exit(1)
    if "--event-log" in args:
        assert os.environ.get("PULUMI_DEBUG_COMMANDS") == "true"
        meta = {{"op": "create", "urn": "{URN}", "type": "kubernetes:core/v1:Namespace", "provider": ""}}
        with open(args[args.index("--event-log") + 1], "w") as log:
            for i, event in enumerate([{{"resourcePreEvent": {{"metadata": meta}}}},
                                       {{"resOutputsEvent": {{"metadata": meta}}}}]):
                log.write(json.dumps({{"sequence": i, "timestamp": 0, **event}}) + "\\n")
                log.flush()
                time.sleep(0.3)
    time.sleep(0.2)
""")


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    binary = tmp_path / "pulumi"
    binary.write_text(FAKE_PULUMI)
    binary.chmod(0o755)
    monkeypatch.setattr("infra.toolchain.tool_path", lambda name: binary)
    monkeypatch.setenv("FAKE_ARGS", str(tmp_path / "args.json"))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    return tmp_path / "args.json"


def stack(tmp_path: Path) -> TempStack:
    return TempStack("b-1", tmp_path, stack=None, env={"PULUMI_CONFIG_PASSPHRASE": "x"})  # type: ignore[arg-type]


def test_up_is_the_users_command_timed_to_its_exit(tmp_path: Path, fake_pulumi: Path) -> None:
    import json

    took = timed_up(stack(tmp_path))
    args = json.loads(fake_pulumi.read_text())
    assert args[:4] == ["up", "--yes", "--skip-preview", "--non-interactive"]
    assert args[args.index("--stack") + 1] == "b-1"
    assert "--event-log" not in args  # a user's `pulumi up` writes none
    assert 0.2 <= took < 5


def test_events_arrive_while_the_command_runs(tmp_path: Path, fake_pulumi: Path) -> None:
    arrivals: list[tuple[str, float]] = []
    t0 = time.monotonic()

    def on_event(event: object) -> None:
        kind = "pre" if getattr(event, "resource_pre_event", None) else "outputs"
        arrivals.append((kind, time.monotonic() - t0))

    took = timed_up(stack(tmp_path), on_event=on_event)
    assert [kind for kind, _ in arrivals] == ["pre", "outputs"]
    # Stamped as they were written (0.3 s apart), not all at the end.
    assert arrivals[1][1] - arrivals[0][1] >= 0.2
    assert arrivals[1][1] < took


def test_a_failed_update_raises_with_what_the_cli_said(tmp_path: Path, fake_pulumi: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(CommandError, match="the update failed"):
        timed_up(stack(tmp_path), on_event=lambda event: None)


def test_the_reader_keeps_a_line_written_in_two_parts(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    seen: list[int] = []
    reader = EventLogReader(log, lambda event: seen.append(event.sequence))
    reader.start()
    with log.open("w") as out:
        out.write('{"sequence": 1, "timestamp": 0, "summ')
        out.flush()
        time.sleep(0.1)
        out.write('aryEvent": {}}\n{"sequence": 2, "timestamp": 0}')
    reader.finish()
    assert seen == [1, 2]

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, INITIAL_HASH, TAU_TASKS, TESTS

from ui.cli import main

SHOPASSIST = str(Path(sys.executable).parent / "shopassist")


@pytest.fixture
def small_index(capsys):
    assert main(["index", "--catalog", str(DATA / "catalog_small.jsonl"), "--name", "small"]) == 0
    assert "indexed 5 items into 'catalog-small'" in capsys.readouterr().out
    return "small"


def test_index_twice_is_a_no_op(small_index, capsys):
    assert main(["index", "--catalog", str(DATA / "catalog_small.jsonl"), "--name", "small"]) == 0
    assert "is up to date (5 items)" in capsys.readouterr().out


def test_search_with_filters_prints_json_lines(small_index, capsys):
    rc = main(["search", "boots for a long hike", "--store", "small", "--json", "--option", "color=brown"])
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["item_id"] for r in rows] == ["sku-003"]
    assert rows[0]["options"] == {"color": "brown", "size": "42"} and rows[0]["price"] == 179.0


def test_search_excludes_unavailable_unless_asked(small_index, capsys):
    main(["search", "trail running shoe", "--store", "small", "--json", "--category", "shoes"])
    assert [json.loads(x)["item_id"] for x in capsys.readouterr().out.splitlines()] == ["sku-001"]
    main(["search", "trail running shoe", "--store", "small", "--json", "--category", "shoes", "--include-unavailable"])
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "", "--store", "small"], "query is empty"),
        (["search", "shoe", "--store", "small", "--max-price", "-1"], "at least 0"),
        (["search", "shoe", "--store", "small", "--option", "colour=red"], "unknown option 'colour'"),
        (["search", "shoe", "--store", "never-indexed"], "is not indexed yet: run `shopassist index`"),
        (["store", "info", "--store", "nope"], "unknown store 'nope'; stores here:"),
    ],
)
def test_user_errors_exit_2_with_one_line(small_index, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_catalog_file_names_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "title": "t", "category": "c", "price": 1}\n{"id": "2"}\n')
    assert main(["index", "--catalog", str(bad)]) == 2
    assert "bad.jsonl line 2: missing required field 'title'" in capsys.readouterr().err


def test_store_commands(tmp_path, capsys):
    assert main(["store", "hash"]) == 0
    assert capsys.readouterr().out.strip() == INITIAL_HASH
    assert main(["store", "export", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["orders.json", "products.json", "users.json"]
    from assistant.store import Store

    with Store.open() as store:  # the same database the CLI uses (SHOPASSIST_STATE_DIR)
        order = store.order("#W6779827")
        order["status"] = "cancelled"
        with store.transaction() as tx:
            tx.put_order(order)
    main(["store", "info"])
    assert INITIAL_HASH not in capsys.readouterr().out
    assert main(["store", "reset"]) == 0
    main(["store", "hash"])
    assert capsys.readouterr().out.splitlines()[-1] == INITIAL_HASH


def _run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [SHOPASSIST, *args],
        input=stdin,
        cwd=TESTS.parent,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_console_script_search_and_chat(small_index):
    proc = _run(["search", "x" * 10_000, "--store", "small"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "limit is 1000" in proc.stderr
    proc = _run(["chat", "--store", "small", "--search-only"], stdin="a hiking boot under $200\n\nquit\n")
    assert proc.returncode == 0, proc.stderr
    assert "[item sku-003]" in proc.stdout and "Traceback" not in proc.stderr


def _run_in(state, args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "SHOPASSIST_STATE_DIR": str(state)}
    return subprocess.run(
        [SHOPASSIST, *args], input=stdin, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300
    )


def test_console_chat_runs_the_agent_with_its_trace(tau_collection, tau_state, garbage_checkpoint):
    args = ["chat", "--model", str(garbage_checkpoint), "--trace", "--max-steps", "2", "--no-examples"]
    proc = _run_in(tau_state, args, stdin="hello\n" + "x" * 5000 + "\nquit\n")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.count("you> ") == 3 and "keep it under 4000" in proc.stdout


def test_console_eval_runs_the_model_agent(tau_collection, tau_state, garbage_checkpoint, tmp_path):
    tasks = TAU_TASKS / "tasks_dev.json"
    out = tmp_path / "results.jsonl"
    args = ["eval", "tasks", "--file", str(tasks), "--limit", "1", "--model", str(garbage_checkpoint)]
    proc = _run_in(tau_state, [*args, "--max-turns", "1", "--max-steps", "2", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["tasks"] == 1 and summary["crashed"] == 0 and 0 < summary["avg_steps"] <= 2
    assert len(out.read_text().splitlines()) == 1


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_each_command_shows_only_its_own_options(capsys):
    tasks = _help(["eval", "tasks"], capsys)
    assert "--file" in tasks and "--trials" in tasks
    assert not any(flag in tasks for flag in ("--shuffles", "--llm-users", "--data"))
    zeroshot = _help(["eval", "zeroshot"], capsys)
    assert "--shuffles" in zeroshot and "--trials" not in zeroshot and "--file" not in zeroshot
    assert "--max-steps" not in _help(["recommend"], capsys)


def test_old_spellings_run_the_new_command_and_say_so(capsys):
    with pytest.raises(SystemExit) as refused:  # parsed as `data dialogues`, which wants a source
        main(["finetune", "build", "--out", "x.jsonl"])
    assert "shopassist data dialogues: give --tasks" in str(refused.value)
    assert "`finetune build` is now `data dialogues`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "zeroshot-data", "--help"])
    out = capsys.readouterr()
    assert "`eval zeroshot-data` is now `data zeroshot`" in out.err and "--users" in out.out


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    utf8 = tmp_path / "latin1.jsonl"
    utf8.write_bytes(b'{"id": "1", "title": "caf\xe9", "category": "c", "price": 1}\n')
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({"id": "1", "title": "t", "category": "c", "price": 1, "description": "x" * 1_000_000}))
    tasks = tmp_path / "tasks_bad.json"
    tasks.write_bytes(b"[\xff\xfe]")
    configs = {}
    for name, text in {
        "int": "42",
        "word": "data: [a.jsonl]\nbatch_size: four\n",
        "prof": "data: [a.jsonl]\nprofile: {nonsense: 1}\n",
    }.items():
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(text)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "users.json").write_text("{}")
    return {"utf8": utf8, "huge": huge, "tasks": tasks, "taken": taken, **configs}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["index", "--catalog", "{utf8}"], "not valid UTF-8"),
        (["index", "--catalog", "{huge}"], "the limit is 2,000"),
        (["index", "--catalog", "{utf8}", "--batch-size", "-1"], "must be at least 1"),
        (["index", "--catalog", "{utf8}", "--batch-size", "0"], "must be at least 1"),
        (["eval", "tasks", "--file", "{tasks}", "--agent", "oracle"], "not valid UTF-8"),
        (["train", "sft", "--config", "{int}"], "a config is a mapping"),
        (["train", "sft", "--config", "{word}"], "batch_size must be a number"),
        (["train", "sft", "--config", "{prof}"], "unknown profile field(s) nonsense"),
        (["store", "export", "{taken}/users.json/out"], "Not a directory"),
        (["store", "export", "{taken}"], "already holds users.json"),
        (["store", "info", "--store", "/etc"], "a plain name"),
    ],
)
def test_bad_input_gets_one_line_and_changes_nothing(tmp_path, capsys, argv, message):
    files = _bad_files(tmp_path)
    argv = [a.format(**files) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own checks (--batch-size) exit 2 with one usage line
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert (files["taken"] / "users.json").read_text() == "{}"  # an export never overwrites
    assert sorted(p.name for p in files["taken"].iterdir()) == ["users.json"]  # nothing half-written


def test_a_closed_pipe_ends_quietly(small_index):
    proc = subprocess.run(
        f"{SHOPASSIST} search boots --store small --json | head -c 1",
        shell=True,
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr

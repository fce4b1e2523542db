import json
import signal
import subprocess
import sys

import pytest
from conftest import INITIAL_HASH, TESTS

from assistant.store import Store, StorePack, StorePackError, state_hash


def test_initial_state_hash_matches_spec_reference(store):
    assert store.counts() == {"products": 50, "users": 500, "orders": 1000}
    assert store.state_hash() == INITIAL_HASH


def test_export_round_trips_the_shipped_documents(store, pack, tmp_path):
    shipped = pack.read_documents()
    exported = store.export_state()
    assert exported == shipped
    # key order and int-vs-float survive, not just equality
    assert json.dumps(exported["users"]) == json.dumps(shipped["users"])
    paths = store.export_to_dir(tmp_path / "out")
    reloaded = {p.stem: json.loads(p.read_text()) for p in paths}
    assert state_hash(reloaded) == INITIAL_HASH
    assert StorePack.from_dir(tmp_path / "out").read_documents() == shipped


def test_gift_card_balances_stay_ints_and_floats_stay_floats(store):
    balances = [m["balance"] for u in store.users().values() for m in u["payment_methods"].values() if "balance" in m]
    assert len(balances) > 100 and all(type(b) is int for b in balances)
    order = store.order("#W6779827")
    assert all(type(t["amount"]) is float for t in order["payment_history"])


def test_hash_distinguishes_int_from_float():
    assert state_hash({"a": [17]}) != state_hash({"a": [17.0]})
    assert state_hash({"a": True}) != state_hash({"a": 1})
    assert state_hash({"a": 1, "b": 2}) == state_hash({"b": 2, "a": 1})


def test_write_commits_and_reset_restores(store):
    order = store.order("#W6779827")
    order["status"] = "cancelled"
    order["cancel_reason"] = "no longer needed"
    with store.transaction() as tx:
        tx.put_order(order)
    assert store.order("#W6779827")["cancel_reason"] == "no longer needed"
    assert list(store.order("#W6779827"))[-1] == "cancel_reason"  # added fields go last
    assert store.state_hash() != INITIAL_HASH
    store.reset()
    assert store.state_hash() == INITIAL_HASH


def test_failed_write_rolls_back_every_change(store):
    user = store.user("mei_kovacs_8020")
    user["address"]["city"] = "Nowhere"
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put_user("mei_kovacs_8020", user)
            raise RuntimeError("a check failed after the first write")
    assert store.user("mei_kovacs_8020")["address"]["city"] != "Nowhere"
    assert store.state_hash() == INITIAL_HASH


def test_changes_persist_across_reopen(tmp_path, pack):
    path = tmp_path / "s.sqlite3"
    with Store(path, pack) as s:
        user = s.user("mei_kovacs_8020")
        user["email"] = "NEW@example.com"
        with s.transaction() as tx:
            tx.put_user("mei_kovacs_8020", user)
    with Store(path, pack) as s:
        assert s.find_user_id_by_email("new@EXAMPLE.com") == "mei_kovacs_8020"


KILLED_WRITER = """
import sys, time
from assistant.store import Store, get_pack
store = Store(sys.argv[1], get_pack("tau-retail"))
with store.transaction() as tx:
    for order in store.orders().values():
        order["status"] = "cancelled"
        tx.put_order(order)
    print("mid-write", flush=True)
    time.sleep(120)
"""


def test_process_killed_mid_write_leaves_previous_state(tmp_path, pack):
    path = tmp_path / "killed.sqlite3"
    Store(path, pack).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], cwd=TESTS.parent, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "mid-write"  # 1,000 orders written, not committed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Store(path, pack) as s:
        assert s.state_hash() == INITIAL_HASH
        assert sum(o["status"] == "cancelled" for o in s.orders().values()) == 102


def test_user_lookups_follow_the_spec(store):
    assert store.find_user_id_by_email("Mei.Kovacs8232@EXAMPLE.com") == "mei_kovacs_8020"
    user = store.user("mei_kovacs_8020")
    first, last = user["name"]["first_name"], user["name"]["last_name"]
    zip_code = user["address"]["zip"]
    assert store.find_user_id_by_name_zip(first.upper(), last.lower(), zip_code) == "mei_kovacs_8020"
    assert store.find_user_id_by_name_zip(first, last, " " + zip_code) is None  # zip is exact, untrimmed
    assert store.find_user_id_by_email("nobody@example.com") is None


def test_pack_errors_name_the_file(tmp_path):
    with pytest.raises(StorePackError, match="lacks products.json, users.json, orders.json"):
        StorePack.from_dir(tmp_path)
    for name in ("products", "users", "orders"):
        (tmp_path / f"{name}.json").write_text("{}")
    (tmp_path / "users.json").write_text("{not json")
    with pytest.raises(StorePackError, match="users.json: not valid JSON"):
        StorePack.from_dir(tmp_path).read_documents()


def test_cached_hash_equals_the_reference_procedure(store):
    assert store.state_hash() == state_hash(store.export_state()) == INITIAL_HASH
    order = store.order("#W6779827")
    order["payment_history"].append({"transaction_type": "refund", "amount": 17, "payment_method_id": "x'y\\"})
    with store.transaction() as tx:
        tx.put_order(order)
    assert store.state_hash() == state_hash(store.export_state()) != INITIAL_HASH
    order["payment_history"][-1]["amount"] = 17.0  # int vs float must still differ
    with store.transaction() as tx:
        tx.put_order(order)
    first = store.state_hash()
    assert first == state_hash(store.export_state())
    assert state_hash({"users": {}, "orders": {}, "products": {}}) == store._hasher.hash_rows(
        {"users": [], "orders": [], "products": []}
    )

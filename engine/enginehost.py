"""The child process that runs durable_rules' C engine for `engine.adapter`.

It reads ("define", name, rules) and ("run", name, payload, sid) messages from stdin and
answers ("ok", value) or ("error", message) on stdout. If the C engine crashes, only this
process dies; the adapter reports the call as failed and starts a new one.
"""
from __future__ import annotations

import os
import re
import signal
import sys
from multiprocessing.connection import Connection

import durable_rules_engine as _dre

_ID = re.compile(r'"yid": (\d+)')


def _run(handle: int, payload: str, sid: str) -> dict[str, list[int]]:
    fired: dict[str, set[int]] = {}
    try:
        code, state = _dre.assert_facts(handle, payload)
        if code not in (0, 1):      # 1 = some fact matched no rule: not an error (PITFALLS 3)
            raise RuntimeError(f"assert_facts returned code {code}")
        result = _dre.start_action_for_state(handle, state)
        message = result[1] if result else None
        while message:
            name = message[2:message.index('"', 2)]
            fired.setdefault(name, set()).update(int(x) for x in _ID.findall(message))
            message = _dre.complete_and_start_action(handle, state)
    finally:
        _dre.delete_state(handle, sid)
    return {name: sorted(ids) for name, ids in fired.items()}


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # the parent decides when we stop
    out = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)                                     # stray prints go to stderr
    inp = Connection(os.dup(0), writable=False)
    handles: dict[str, int] = {}
    while True:
        try:
            msg = inp.recv()
        except (EOFError, OSError):
            return
        try:
            if msg[0] == "define":
                handles[msg[1]] = _dre.create_ruleset(msg[1], msg[2])
                out.send(("ok", None))
            else:
                out.send(("ok", _run(handles[msg[1]], msg[2], msg[3])))
        except Exception as exc:  # noqa: BLE001 — reported to the adapter, which raises it
            out.send(("error", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    sys.exit(main())

"""A run record as a process would have left it, for tests that start from a given state.

The package itself changes a status only through RunFolder.move (rm_demo.lifecycle); a test that needs a
run "completed" without training one writes the record here, merged into what is there, as `update` does."""

from __future__ import annotations

import time

from rm_demo.runs import RunFolder, write_json_atomic


def leave_record(run: RunFolder, **fields) -> dict:
    with run.lock():
        data = run.read()
        data.update(fields, updated_at=time.time())
        write_json_atomic(run.run_json, data)
        return data

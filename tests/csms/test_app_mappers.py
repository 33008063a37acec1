"""The app configures every ORM mapper when it is made: configured lazily by the first query,
two threads at once (the event loop and a database thread, in a worker's first burst after a
restart) could see a half-configured attribute and answer 500."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from sqlmodel.main import default_registry
from config.settings import load_settings
from csms.app import create_app

unconfigured = [m for m in default_registry.mappers if not m.configured]
assert unconfigured, "nothing to prove: the mappers were configured before the app was made"
create_app(load_settings(data_dir=sys.argv[1]))
left = [m.class_.__name__ for m in default_registry.mappers if not m.configured]
print(left)
sys.exit(1 if left else 0)
"""


def test_create_app_leaves_no_mapper_to_configure_at_the_first_request(tmp_path: Path) -> None:
    done = subprocess.run(  # a fresh interpreter: other tests have configured them long ago
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr

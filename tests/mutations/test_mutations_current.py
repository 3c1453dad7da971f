"""Every planted bug of mutations.txt still names a line that exists exactly once, so `make mutate` plants them all.

The plants themselves run only in `make mutate` (slow); this keeps the list from going stale as the code moves.
"""

import pytest
from mutate import LIST, ROOT, parse

MUTATIONS = parse(LIST.read_text())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.why for m in MUTATIONS])
def test_each_planted_bug_names_one_existing_line(mutation):
    path = ROOT / mutation.file
    assert path.is_file(), f"{mutation.file} is gone: update mutations.txt"
    count = path.read_text().splitlines().count(mutation.old)
    assert count == 1, f"{mutation.file}: {mutation.old.strip()!r} found {count} times: update mutations.txt"
    assert mutation.new != mutation.old

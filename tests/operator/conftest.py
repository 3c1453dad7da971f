import sys
from pathlib import Path

# The builders and fakes live next to the tests (tests/operator has no __init__.py on purpose: the
# package name "operator" would shadow the standard library).
sys.path.insert(0, str(Path(__file__).parent))

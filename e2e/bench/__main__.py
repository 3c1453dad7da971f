"""`python -m bench` (with e2e and e2e/tests on PYTHONPATH): see main.py."""

from .main import main

main()

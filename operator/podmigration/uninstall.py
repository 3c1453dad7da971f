"""``python -m podmigration.uninstall``: the chart's pre-delete Job (controller/uninstall.py does the work)."""

from .controller.uninstall import main

if __name__ == "__main__":
    main()

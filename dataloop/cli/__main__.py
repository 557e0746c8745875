"""``python -m dataloop.cli``: the same as the ``dataloop`` command."""

from dataloop.cli import main

if __name__ == "__main__":
    main()

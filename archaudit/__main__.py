"""``python -m archaudit``."""

from .cli import exit_process, main

exit_process(main())

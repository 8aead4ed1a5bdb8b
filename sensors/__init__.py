"""E²A sensors: thin (cursor in, run requests out). Cursor logic lives in ``cursors.py`` as pure functions."""

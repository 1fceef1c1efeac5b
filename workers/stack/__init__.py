"""`make run` (`python -m workers.stack.embedded`): the dev server, the worker, SQLite, an SMTP
capture and the demo orgs on one laptop."""

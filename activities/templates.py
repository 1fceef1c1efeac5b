"""Where the templates are: the e-mails (per locale) and the documents (invoice, statement),
read by the mailer and the document renderer alike."""

import os
from pathlib import Path


def _templates_dir() -> Path:
    configured = os.environ.get("BILLING_TEMPLATES_DIR")
    if configured:
        return Path(configured)
    beside_source = Path(__file__).resolve().parents[1] / "templates"
    return beside_source if beside_source.is_dir() else Path.cwd() / "templates"


TEMPLATES_DIR = _templates_dir()

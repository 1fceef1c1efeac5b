"""`billing`: the command line for billing staff and operators.

Commands go noun then verb (`billing org show`, `billing invoice list`, `billing storage buy`);
the commands that change an org are generated from domain.operations (workers.cli.changes).

Exit codes, the same for every command (workers.cli.common.ExitCode): 0 done; 1 refused or
declined; 2 bad usage (nothing sent or written); 3 Temporal or the database unavailable. Every
error is one line on standard error naming the problem (and the setting to check)."""

import logging
import os
import sys
from typing import NoReturn, Optional

import typer

from workers.cli.common import EXIT_CODES_HELP, ExitCode, app, error_line, errors

# Each module adds its commands to `app` when imported.
from workers.cli import orgs  # first: create, show and list lead `billing org --help`
from workers.cli import changes, documents, operators, webhooks

COMMAND_MODULES = (orgs, changes, documents, operators, webhooks)

__all__ = ["app", "main", "EXIT_CODES_HELP"]


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version
        try:
            found = version("billing-pipeline")
        except PackageNotFoundError:
            found = "unknown (not installed: run `make install`)"
        typer.echo(f"billing {found}")
        raise typer.Exit()


@app.callback()
def _options(show_version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                         help="Print the version and exit")) -> None:
    """Renewal and dunning pipeline for SaaS organisations."""


def _one_line(message: str) -> str:
    return " ".join(message.replace("Value error, ", "").split())  # pydantic's prefix, from Typer's coercion


def main() -> None:
    """The `billing` command: every error is one line with its exit code (ExitCode)."""
    from pydantic import ValidationError
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
    from workers.cli.outage import unavailable
    from workers.runtime.config import setting_error
    from workers.runtime.temporal import TemporalConfigError
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="billing", standalone_mode=False)
    except NoArgsIsHelpError as err:
        err.show()
        code = ExitCode.USAGE
    except UsageError as err:  # Typer's own checks: a missing argument, an unknown option or choice
        where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        error_line(f"{_one_line(err.format_message())}{where}")
        code = ExitCode.USAGE
    except ClickException as err:
        error_line(_one_line(err.format_message()))
        code = err.exit_code
    except typer.Abort:  # Ctrl-C or end of input at a prompt: the user declined
        errors.print("aborted: nothing was sent", highlight=False, markup=False)
        code = ExitCode.REFUSED
    except TemporalConfigError as err:  # the `temporal` CLI's config file or profile
        error_line(_one_line(str(err)))
        code = ExitCode.USAGE
    except ValidationError as err:  # a BILLING_ setting out of its range
        error_line(setting_error(err))
        code = ExitCode.USAGE
    except Exception as err:  # noqa: BLE001
        message = unavailable(err)
        if message is None:
            raise
        error_line(message)
        code = ExitCode.UNAVAILABLE
    _exit(int(code or 0))


def _exit(code: int) -> NoReturn:
    """Exit without the interpreter's teardown: the Temporal client's Rust threads can abort it
    (SIGABRT after the output was printed, seen under load; PyGILState_Release during
    finalisation). Nothing is left to clean up but buffered output."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the reader went away
            pass
    os._exit(code)

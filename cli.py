"""`mst`: the command line. Each subcommand's options and adapter live in commands/<name>.py;
this module wires them and turns bad input (UserError, raised anywhere below) into one line and
exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import warnings

from .errors import Caution, UserError

# Modules of commands/, in the order `mst --help` lists their subcommands (export adds inspect).
COMMANDS = ("train", "import_", "eval", "export", "simulate", "lava", "parity", "energy", "resources", "plan", "demo")  # modules


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mst", description="Masked Spiking Transformers: train, export to NIR, "
                                        "simulate, run in Lava, report energy.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_parser(sub)
    return p


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that every cleanup on the way out runs (temporary
    files, Lava workers); not an Exception, so that no `except Exception` swallows it."""


def _terminate(signum, frame):
    raise Terminated()


def _show_caution(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, Caution):
        print(f"warning: {message}", file=sys.stderr, flush=True)
    else:
        _show_other(message, category, filename, lineno, file, line)


_show_other = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    with warnings.catch_warnings():                 # restored on return (main may be called in-process)
        warnings.showwarning = _show_caution
        warnings.simplefilter("default", Caution)   # each message once per command (a graph is read more than once)
        return _main(argv)


def _main(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as e:
        return _error(e)
    except (MemoryError, RuntimeError) as e:      # a memory cap met anyway: one line (faults.py)
        from .faults import allocation_failure
        failed = allocation_failure(e)
        if failed is None:
            raise
        del e                                     # its traceback holds the frames' big tensors
        return _error(failed)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("error: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:             # the reader went away (`mst inspect g.nir | head`): stop quietly
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141


def _error(e: UserError) -> int:
    from .ir.validate import shown                # names from files may hold control characters
    print(f"error: {shown(e)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""``wastetrack deliver | replies import | escalate | credit | report``: the liaison loop on the command line.

Thin like the other commands: each calls one function (``delivery.deliver``,
``replies.import_reply_file``, ``escalation.escalate``, ``credit.write_credit_list``,
``monthly.write_report``), the same ones the follow-up DAG calls through ``orchestration``.
Exit codes: 0 done; 2 bad input (a bad date or month, no store, no liaison directory, a file
that is not a reply workbook; one line); 3 mail not sent (server down or refusing; what was
not sent stays queued and the next ``deliver`` or ``escalate`` sends it). Passwords (store,
SMTP) are never printed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

STORE_ENV, LANDING_ENV = "WASTETRACK_STORE", "WASTETRACK_LANDING"
EXIT_INPUT, EXIT_MAIL = 2, 3


def add_liaison_parsers(subparsers: Any) -> None:
    """Add the liaison loop's commands to the top-level subparsers (``cli.build_parser``)."""
    d = subparsers.add_parser("deliver", help="e-mail each liaison its leads of a night (once; --resend again)")
    d.add_argument("--out", required=True, type=Path, help="output directory of `wastetrack run` (sheets)")
    d.add_argument("--date", required=True, help="the night YYYY-MM-DD")
    _landing(d)
    _store(d, "OUT/wastetrack.db")
    d.add_argument("--resend", action="store_true", help="send the night's leads again, on purpose")
    _at(d)
    d.set_defaults(func=cmd_deliver)

    r = subparsers.add_parser("replies", help="liaisons' replies: import returned XLSX reply sheets")
    rs = r.add_subparsers(dest="replies_command", required=True)
    ri = rs.add_parser("import", help="import returned reply workbooks (each file once)")
    ri.add_argument("files", nargs="+", type=Path, help="XLSX files (the 回复表 sheet)")
    _landing(ri)
    _store(ri, None)
    ri.set_defaults(func=cmd_replies_import)

    e = subparsers.add_parser("escalate", help="follow up a night: reminders, escalations, transfers, disputes")
    e.add_argument("--out", required=True, type=Path, help="output directory of `wastetrack run` (sheets)")
    e.add_argument("--date", required=True, help="the night YYYY-MM-DD (replies up to its end count)")
    _landing(e)
    _store(e, "OUT/wastetrack.db")
    e.add_argument("--no-send", action="store_true", help="decide and queue only; the next deliver sends")
    _at(e)
    e.set_defaults(func=cmd_escalate)

    for name, func, text in (("credit", cmd_credit, "the carrier credit list of a month (XLSX + CSV)"),
                             ("report", cmd_report, "the monthly statistics of the liaison network (XLSX + HTML)")):
        p = subparsers.add_parser(name, help=text, description=text)
        p.add_argument("--month", required=True, help="YYYY-MM")
        _store(p, None)
        p.add_argument("--out", type=Path, default=Path("."), help="directory to write to (default .)")
        p.add_argument("--landing", type=Path, default=None,
                       help=f"landing directory, for names (optional; env {LANDING_ENV})")
        p.set_defaults(func=func)


def _landing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", type=Path, default=None,
                   help=f"landing directory: its reference/liaisons.csv is the liaison network (env {LANDING_ENV})")


def _store(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--store", help=f"store URL or SQLite file (env {STORE_ENV}" + (f"; default {default})"
                                                                                   if default else ")"))


def _at(p: argparse.ArgumentParser) -> None:
    p.add_argument("--at", default=None, help="act as at this local time (ISO 8601), to replay past nights; "
                                              "default: now")


class InputError(ValueError):
    """A usage problem: one line, exit 2."""


def _store_url(args: argparse.Namespace, out: Path | None) -> str:
    url = args.store or os.environ.get(STORE_ENV)
    if url:
        return url
    if out is not None:
        return str(out / "wastetrack.db")
    raise InputError(f"no store given: use --store URL or set {STORE_ENV}")


def _open(url: str) -> Any:
    from wastetrack.pipeline import open_store_checked

    return open_store_checked(url)


def _network(landing: Path | None, required: bool = True) -> Any:
    from wastetrack.network import Network

    path = landing or (Path(os.environ[LANDING_ENV]) if os.environ.get(LANDING_ENV) else None)
    if path is None:
        if required:
            raise InputError(f"the liaison network is needed: --landing LANDING (its reference/liaisons.csv) "
                             f"or set {LANDING_ENV}")
        return None
    if not (path / "reference" / "liaisons.csv").is_file():
        raise InputError(f"{path}: no reference/liaisons.csv")
    return Network.from_landing(path)


def _date(text: str) -> str:
    from wastetrack.orchestration import valid_date

    try:
        return valid_date(text)
    except ValueError as exc:
        raise InputError(str(exc).removeprefix("wastetrack: ")) from None


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text or ""):
        raise InputError(f"{text!r} is not a month: use YYYY-MM, e.g. 2026-11")
    return text


def _fail(code: int, message: str) -> int:
    from wastetrack.store.urls import mask_secrets

    print(f"wastetrack: {mask_secrets(message.strip().splitlines()[0] if message.strip() else message)}",
          file=sys.stderr)
    return code


def _run(fn: Any) -> int:
    """Run a command body; expected failures become one line and an exit code."""
    from wastetrack.delivery import DeliveryError
    from wastetrack.mail import MailError
    from wastetrack.replies import ReplyFileError

    try:
        return int(fn() or 0)
    except (DeliveryError, MailError) as exc:
        return _fail(EXIT_MAIL, str(exc))
    except (InputError, ReplyFileError) as exc:
        return _fail(EXIT_INPUT, str(exc))


def cmd_deliver(args: argparse.Namespace) -> int:
    def body() -> int:
        from wastetrack.delivery import deliver
        from wastetrack.mail import smtp_settings

        date = _date(args.date)
        net = _network(args.landing)
        smtp = smtp_settings()
        with _open(_store_url(args, args.out)) as store:
            res = deliver(store, args.out, date, net, smtp, resend=args.resend, now=args.at)
        extra = f" (and left-overs of {', '.join(res['leftover_dates'])})" if res["leftover_dates"] else ""
        print(f"{date}: {res['queued']} mail(s) queued, {res['sent']} sent via {smtp.url}{extra}")
        return 0

    return _run(body)


def cmd_replies_import(args: argparse.Namespace) -> int:
    def body() -> int:
        from wastetrack.replies import import_reply_file

        net = _network(args.landing)
        with _open(_store_url(args, None)) as store:
            for f in args.files:
                if not f.is_file():
                    raise InputError(f"{f}: no such file")
                res = import_reply_file(store, f, net)
                print(f"{f.name}: {res['status']}, {res['accepted']} accepted, {res['quarantined']} quarantined, "
                      f"{res['duplicates']} already stored")
                for row, why in res["problems"]:
                    print(f"  {f.name} row {row}: {why}")
        return 0

    return _run(body)


def cmd_escalate(args: argparse.Namespace) -> int:
    def body() -> int:
        from wastetrack.delivery import flush
        from wastetrack.escalation import escalate
        from wastetrack.mail import smtp_settings

        date = _date(args.date)
        net = _network(args.landing)
        smtp = None if args.no_send else smtp_settings()
        with _open(_store_url(args, args.out)) as store:
            res = escalate(store, date, net)
            print(f"{date}: {res['replies_recorded']} replies recorded ({res['replies_set_aside']} set aside), "
                  f"{res['reminded']} reminders, {res['escalated']} escalations ({res['disputes']} disputes), "
                  f"{res['mails_queued']} mail(s) queued; phases {res['phases']}")
            if smtp is not None:
                sent = flush(store, args.out, net, smtp, now=args.at)
                print(f"{len(sent.sent)} mail(s) sent via {smtp.url}")
        return 0

    return _run(body)


def cmd_credit(args: argparse.Namespace) -> int:
    def body() -> int:
        from wastetrack.credit import write_credit_list

        month = _month(args.month)
        net_landing = args.landing or (Path(os.environ[LANDING_ENV]) if os.environ.get(LANDING_ENV) else None)
        with _open(_store_url(args, None)) as store:
            res = write_credit_list(store, month, args.out, landing=net_landing)
        print(f"{month}: {res['carriers']} carrier(s), {res['blacklisted']} on the blacklist, "
              f"{res['first_violation']} first-violation-no-penalty → {res['xlsx']}, {res['csv']}")
        return 0

    return _run(body)


def cmd_report(args: argparse.Namespace) -> int:
    def body() -> int:
        from wastetrack.monthly import write_report

        month = _month(args.month)
        net = _network(args.landing, required=False)
        with _open(_store_url(args, None)) as store:
            res = write_report(store, month, args.out, net)
        print(f"{month}: {res['leads']} lead(s), {res['overdue']} overdue, {res['escalated']} escalated "
              f"→ {res['xlsx']}, {res['html']}")
        return 0

    return _run(body)

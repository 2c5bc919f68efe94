"""`fengqiao users …`: local accounts, against the auth database the settings name
(`FENGQIAO_MONGO_URI`, `FENGQIAO_AUTH_DATABASE`, default `fengqiao_auth`).

    fengqiao users add wang.li --name 王力 --unit 652701 --roles handler,unit_lead
    fengqiao users token wang.li --days 30        # prints the token once: keep it
    fengqiao users revoke <token id>
    fengqiao users disable wang.li | enable wang.li | reset wang.li | list | tokens [wang.li]

Passwords are read from the terminal (twice), or from stdin with `--password-stdin`. Exit
codes: 0 done; 1 refused (exists, unknown, invalid); 2 the store does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

EXIT_REFUSED, EXIT_UNREACHABLE = 1, 2


def add_parser(sub: Any) -> None:
    users = sub.add_parser("users", help="local accounts: people, their roles, API tokens")
    users.set_defaults(func=_run)
    cmd = users.add_subparsers(dest="users_command", required=True, metavar="USERS_COMMAND")
    add = cmd.add_parser("add", help="add a person")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name (王力)")
    add.add_argument("--unit", required=True, help="their unit's id in the directory (652701)")
    add.add_argument(
        "--roles", required=True,
        help="comma-separated: handler, unit_lead, dispatcher, reviewer, ops, auditor",
    )  # fmt: skip
    add.add_argument("--password-stdin", action="store_true", help="read the password on stdin")
    for name, what in (("disable", "lock a person out (their tokens and sessions stop)"),
                       ("enable", "let a disabled person in again")):  # fmt: skip
        one = cmd.add_parser(name, help=what)
        one.add_argument("username")
    reset = cmd.add_parser("reset", help="set a new password (ends the person's sessions)")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true")
    listing = cmd.add_parser("list", help="the people")
    listing.add_argument("--json", action="store_true")
    token = cmd.add_parser("token", help="issue an API token for a person (shown once)")
    token.add_argument("username")
    token.add_argument("--days", type=float, default=None, help="its life (default 90)")
    token.add_argument("--label", default="", help="what it is for")
    revoke = cmd.add_parser("revoke", help="revoke an API token by its id")
    revoke.add_argument("token_id")
    tokens = cmd.add_parser("tokens", help="API tokens (ids, expiry, revoked), not the secrets")
    tokens.add_argument("username", nargs="?")


def _run(args: argparse.Namespace) -> int:
    from pymongo.errors import PyMongoError

    from fengqiao.auth.accounts import AccountError

    command = COMMANDS[args.users_command]
    try:
        return asyncio.run(_with_accounts(command, args))
    except AccountError as exc:
        print(f"fengqiao users: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except PyMongoError as exc:
        print(f"fengqiao users: the auth store does not answer ({exc})"[:500], file=sys.stderr)
        return EXIT_UNREACHABLE


Command = Callable[[Any, argparse.Namespace], Coroutine[Any, Any, int]]


async def _with_accounts(command: Command, args: argparse.Namespace) -> int:
    from pymongo import AsyncMongoClient

    from fengqiao.auth.accounts import Accounts, AccountSettings
    from fengqiao.auth.store import MongoAuthStore
    from fengqiao.runtime.settings import StackSettings

    settings = AccountSettings()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        StackSettings().mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    try:
        store = MongoAuthStore(client, settings.database)
        await store.ensure_indexes()
        return await command(Accounts(store, settings), args)
    finally:
        await client.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        from fengqiao.auth.accounts import AccountError

        raise AccountError("the two passwords differ")
    return first


async def _add(accounts: Any, args: argparse.Namespace) -> int:
    from fengqiao.services.router.directory import load_directory
    from fengqiao.services.router.settings import RouterSettings

    units = load_directory(RouterSettings().directory_file)
    person = await accounts.add(
        args.username, name=args.name, unit_id=args.unit, roles=args.roles.split(","),
        password=_password(args), units=units,
    )  # fmt: skip
    print(f"added {person['username']} ({person['name']}), unit {person['unit_id']}, "
          f"roles {', '.join(person['roles'])}")  # fmt: skip
    return 0


async def _disable(accounts: Any, args: argparse.Namespace) -> int:
    await accounts.set_disabled(args.username, True)
    print(f"disabled {args.username}")
    return 0


async def _enable(accounts: Any, args: argparse.Namespace) -> int:
    await accounts.set_disabled(args.username, False)
    print(f"enabled {args.username}")
    return 0


async def _reset(accounts: Any, args: argparse.Namespace) -> int:
    await accounts.reset(args.username, _password(args))
    print(f"new password set for {args.username}; their sessions ended")
    return 0


async def _list(accounts: Any, args: argparse.Namespace) -> int:
    people = await accounts.people()
    if args.json:
        print(json.dumps(people, default=str, ensure_ascii=False, indent=2))
        return 0
    for p in people:
        state = "disabled" if p.get("disabled") else "active"
        print(f"{p['username']:<24} {p['unit_id']:<16} {','.join(p['roles']):<32} {state}  "
              f"{p['name']}")  # fmt: skip
    return 0


async def _token(accounts: Any, args: argparse.Namespace) -> int:
    issued = await accounts.issue_token(args.username, days=args.days, label=args.label)
    print(issued.token)  # stdout: the token alone, for scripts
    print(f"token id {issued.token_id} for {issued.person}, expires "
          f"{issued.expires_at:%Y-%m-%d %H:%M} UTC; shown once", file=sys.stderr)  # fmt: skip
    return 0


async def _revoke(accounts: Any, args: argparse.Namespace) -> int:
    if not await accounts.revoke(args.token_id):
        from fengqiao.auth.accounts import AccountError

        raise AccountError(f"no token {args.token_id!r}")
    print(f"revoked {args.token_id}")
    return 0


async def _tokens(accounts: Any, args: argparse.Namespace) -> int:
    for t in await accounts.tokens(args.username):
        state = "revoked" if t.get("revoked_at") else f"expires {t['expires_at']:%Y-%m-%d}"
        print(f"{t['token_id']}  {t['person']:<24} {state}  {t.get('label', '')}")
    return 0


COMMANDS: dict[str, Command] = {
    "add": _add, "disable": _disable, "enable": _enable, "reset": _reset, "list": _list,
    "token": _token, "revoke": _revoke, "tokens": _tokens,
}  # fmt: skip

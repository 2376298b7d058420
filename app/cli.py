"""The ``carelevel`` command line: evaluate answers and check rule sets."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from app import __version__
from app.engine import (
    DEFAULT_RULE_SET_KEY,
    CompiledRuleSet,
    Determination,
    RuleSetError,
    ScreeningAnswers,
    TestReport,
    compile_rule_set,
    default_rule_set,
    determination_to_json,
    evaluate,
    run_tests,
)
from app.engine.determination import CURRENT_SEMANTICS
from app.kernel.tenancy import is_tenant_id
from app.screenings.readable import about_determination, document, plain_text
from app.security.principal import Scope, parse_scopes

if TYPE_CHECKING:
    from app.kernel.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carelevel`` command."""
    try:
        try:
            return _run(argv)
        finally:
            # What is still buffered is written now, where a reader gone away can be caught.
            sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The output's reader has gone (``carelevel rules facts | head -1``): stop quietly, as
    Unix tools do. Standard output is pointed at /dev/null so that the interpreter's last
    flush at exit does not fail again (Python's documentation, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_FAILED


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.handler(args)
    except ValidationError as error:
        if error.title != "Settings":
            raise
        # A configuration the service must not start with: say which setting, and why.
        print("carelevel: the configuration is invalid:", file=sys.stderr)
        for problem in error.errors(include_input=False, include_url=False):
            where = "_".join(str(part) for part in problem["loc"]).upper()
            setting = f"CARELEVEL_{where}: " if where else ""
            print(f"  - {setting}{problem['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return EXIT_USAGE
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carelevel",
        description="Level-of-care screening: is an intensive outpatient program the right fit? "
        "Clinical decision support, not a diagnosis.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(metavar="command")

    evaluate_cmd = commands.add_parser(
        "evaluate", help="evaluate a screening answers file and print the determination"
    )
    evaluate_cmd.add_argument("answers", type=Path, help="answers JSON file ('-' for stdin)")
    evaluate_cmd.add_argument(
        "--rules", type=Path, help="rule-set YAML/JSON file (default: the shipped rule set)"
    )
    evaluate_cmd.add_argument("--json", action="store_true", help="print the full JSON")
    evaluate_cmd.set_defaults(handler=_evaluate)

    rules_cmd = commands.add_parser("rules", help="work with rule-set documents")
    rules_sub = rules_cmd.add_subparsers(metavar="action")
    check = rules_sub.add_parser(
        "check", help="validate a rule set, run its test cases and report rule coverage"
    )
    check.add_argument("file", type=Path, help="rule-set YAML/JSON file")
    check.set_defaults(handler=_rules_check)
    facts = rules_sub.add_parser(
        "facts", help="print the catalogue of facts conditions may use, as Markdown"
    )
    facts.set_defaults(handler=_rules_facts)
    stored = {
        "versions": ("list the stored versions of a rule set", _rules_versions),
        "diff": ("compare two stored versions: rules and test-case outcomes", _rules_diff),
        "simulate": (
            "re-evaluate recent stored screenings (every tenant's) under a version",
            _rules_simulate,
        ),
        "activate": (
            "make a published version decide new screenings (recorded in the audit trail)",
            _rules_activate,
        ),
    }
    for name, (summary, handler) in stored.items():
        command = rules_sub.add_parser(name, help=f"{summary} (the configured database)")
        if name == "diff":
            command.add_argument("from_version", type=int, help="the version compared from")
            command.add_argument("to_version", type=int, help="the version compared to")
        elif name != "versions":
            command.add_argument("version", type=int, help="the stored version number")
        if name == "simulate":
            command.add_argument(
                "--sample", type=int, default=500, help="most recent screenings (default 500)"
            )
        command.add_argument("--owner", default="shared", help="'shared' (default) or a tenant")
        command.add_argument("--key", default=DEFAULT_RULE_SET_KEY, help="the rule set's key")
        command.set_defaults(handler=handler)

    serve = commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", help="interface to bind (default: CARELEVEL_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: CARELEVEL_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: CARELEVEL_WORKERS)")
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser(
        "migrate", help="apply database migrations (alembic upgrade head)"
    )
    migrate.set_defaults(handler=_migrate)

    clients = commands.add_parser("clients", help="manage API clients and their keys")
    clients_sub = clients.add_subparsers(metavar="action")
    create = clients_sub.add_parser("create", help="create a client and print its key once")
    create.add_argument("--tenant", required=True, help="the tenant it belongs to")
    create.add_argument("--name", required=True, help="what it is (an app, an integration)")
    create.add_argument(
        "--scopes",
        required=True,
        nargs="+",
        help="scopes, space- or comma-separated: " + ", ".join(s.value for s in Scope),
    )
    create.set_defaults(handler=_clients_create)
    listing = clients_sub.add_parser("list", help="list clients (never their keys)")
    listing.add_argument("--tenant", help="only this tenant's clients")
    listing.set_defaults(handler=_clients_list)
    revoke = clients_sub.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("client", help="the client's id or key prefix (clk_…)")
    revoke.set_defaults(handler=_clients_revoke)
    _retention_commands(commands)
    return parser


def _retention_commands(commands: Any) -> None:
    """``carelevel partitions …`` and ``carelevel retention …``."""
    partitions = commands.add_parser(
        "partitions", help="monthly partitions of screenings and audit events (PostgreSQL)"
    )
    partitions_sub = partitions.add_subparsers(metavar="action")
    ensure = partitions_sub.add_parser(
        "ensure",
        help="pg_partman's maintenance: create the next months' partitions, drop the months "
        "past every tenant's retention, and move the rows waiting in the default partition into "
        "their month's",
    )
    ensure.add_argument(
        "--months-ahead",
        type=int,
        help="months after this one (default: CARELEVEL_PARTITION_MONTHS_AHEAD)",
    )
    ensure.set_defaults(handler=_partitions_ensure)
    partitions_sub.add_parser(
        "list", help="each table's partitions, their ranges and estimated rows"
    ).set_defaults(handler=_partitions_list)

    retention = commands.add_parser(
        "retention", help="how long screenings and audit events are kept, per tenant; expiry"
    )
    retention_sub = retention.add_subparsers(metavar="action")
    show = retention_sub.add_parser("show", help="the default retention and the tenants' own")
    show.add_argument("--tenant", help="only what applies to this tenant")
    show.set_defaults(handler=_retention_show)
    set_ = retention_sub.add_parser(
        "set", help="give a tenant its own retention (recorded in its audit trail)"
    )
    set_.add_argument("--tenant", required=True, help="the tenant")
    set_.add_argument("--screenings-years", type=int, help="years its screenings are kept (1-100)")
    set_.add_argument("--audit-years", type=int, help="years its audit events are kept (6-100)")
    set_.set_defaults(handler=_retention_set)
    expire = retention_sub.add_parser(
        "expire",
        help="drop the partitions (pg_partman) and delete the rows past retention, then run "
        "pg_partman's maintenance (recorded in the operator tenant's audit trail)",
    )
    expire.add_argument(
        "--dry-run", action="store_true", help="count what would be removed, change nothing"
    )
    expire.set_defaults(handler=_retention_expire)


def _load_rules(path: Path | None) -> CompiledRuleSet:
    return default_rule_set() if path is None else compile_rule_set(path.read_text("utf-8"))


def _evaluate(args: argparse.Namespace) -> int:
    try:
        compiled = _load_rules(args.rules)
    except (OSError, RuleSetError) as error:
        print(f"carelevel: cannot use the rule set: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        text = sys.stdin.read() if str(args.answers) == "-" else args.answers.read_text("utf-8")
        answers = ScreeningAnswers.model_validate_json(text)
    except OSError as error:
        print(f"carelevel: cannot read answers: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as error:
        print("carelevel: the answers are invalid:", file=sys.stderr)
        for problem in error.errors(include_input=False):
            where = ".".join(str(part) for part in problem["loc"]) or "(body)"
            print(f"  - {where}: {problem['msg']}", file=sys.stderr)
        return EXIT_USAGE
    determination = evaluate(compiled, answers)
    if args.json:
        sys.stdout.write(determination_to_json(determination, indent=True).decode() + "\n")
    else:
        print(render(determination, colour=_colour_wanted()))
    return EXIT_OK


def render(determination: Determination, *, colour: bool = False) -> str:
    """The readable report of a determination for a terminal: the one readable document of
    app/screenings/readable.py, as plain text (``colour``: urgency in ANSI colours)."""
    shown = orjson.loads(determination_to_json(determination))
    return plain_text(document(shown, about_determination(shown)), colour=colour)


def _colour_wanted() -> bool:
    """Colours only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _rules_check(args: argparse.Namespace) -> int:
    try:
        compiled = compile_rule_set(args.file.read_text("utf-8"))
    except OSError as error:
        print(f"carelevel: cannot read {args.file}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RuleSetError as error:
        print(f"{args.file}: the rule set is invalid ({len(error.problems)} problems):")
        for problem in error.problems:
            print(f"  ✗ {problem}")
        return EXIT_FAILED
    report = run_tests(compiled)
    print(
        f"{compiled.key} {compiled.version}: {len(compiled.rule_ids)} rules compiled "
        f"(sha256 {compiled.ref.sha256[:12]}…)"
    )
    _print_cases_and_coverage(report)
    _print_review_checks(report, compiled.semantics)
    _print_unread_questions(compiled)
    print("OK" if report.passed else "FAILED")
    return EXIT_OK if report.passed else EXIT_FAILED


def _print_cases_and_coverage(report: TestReport) -> None:
    """The test cases that failed and why, and the rules no case makes fire."""
    failed = [case for case in report.cases if not case.passed]
    print(f"Test cases: {len(report.cases) - len(failed)}/{len(report.cases)} passed")
    for case in failed:
        print(f"  ✗ {case.name}")
        for failure in case.failures:
            print(f"      {failure}")
    covered = len(report.rules) - len(report.never_fired)
    print(f"Rule coverage: {covered}/{len(report.rules)} ({report.coverage:.0%})")
    for rule_id in report.never_fired:
        print(f"  ✗ rule '{rule_id}' never fires in any test case")
    if not report.cases:
        print("  ✗ the rule set has no test cases")


def _print_review_checks(report: TestReport, semantics: int) -> None:
    """Monotonicity and citations: failures from semantics 2 on, warnings (!) for a version
    published before them; an earlier semantics is told what a new version needs."""
    mark = "✗" if semantics >= 2 else "!"
    print(
        "More severe evidence never lowers a case: "
        + ("yes" if not report.monotonicity else f"{len(report.monotonicity)} findings")
    )
    for finding in report.monotonicity:
        print(f"  {mark} {finding}")
    print(f"Rules citing a source: {len(report.rules) - len(report.uncited)}/{len(report.rules)}")
    for rule_id in report.uncited:
        print(f"  {mark} rule '{rule_id}' has no references")
    if semantics == 1:
        print(
            f"  ! semantics {semantics}: evaluated as versions published before 2026.12 "
            f"were (the first override in file order decides); new versions need "
            f"'semantics: {CURRENT_SEMANTICS}' and then pass the two checks above"
        )
    elif semantics < CURRENT_SEMANTICS:
        print(
            f"  ! semantics {semantics}: new versions need 'semantics: {CURRENT_SEMANTICS}' "
            "(consistency rules, context answers, and the answers not used in each result)"
        )


def _print_unread_questions(compiled: CompiledRuleSet) -> None:
    """The questions no rule reads and the rule set does not show as context: a warning (!),
    since asking them costs the person time and the clinician cannot see why."""
    unread = compiled.unread_questions
    total = len(compiled.questions)
    print(f"Questions read by a rule or shown as context: {total - len(unread)}/{total}")
    for path in unread:
        print(f"  ! {path} is read by no rule and not listed as context")


def _serve(args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn

    from app.kernel.settings import counting_alone_with, get_settings
    from app.operations.docs_pages import docs_address
    from app.process.logging_setup import logging_config

    settings = get_settings()
    workers = args.workers or settings.workers
    if settings.rate_limit_backend == "memory":
        try:
            counting_alone_with(workers)  # --workers may ask for more than the settings did
        except ValueError as error:
            print(
                f"carelevel: the configuration is invalid:\n  - --workers: {error}", file=sys.stderr
            )
            return EXIT_USAGE
    host, port = args.host or settings.host, args.port or settings.port
    log_config = logging_config(settings.log_level, json_lines=settings.json_logs)
    # The configuration uvicorn applies as it starts, applied first to say where the docs are.
    logging.config.dictConfig(log_config)
    logging.getLogger("carelevel").info("API docs at %s", docs_address(host, port))
    with _metrics_shared_by(workers):
        uvicorn.run(
            "app.main:create_server_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
            # On SIGTERM: stop accepting, let requests in flight finish (each screening is
            # one transaction: stored whole or not at all), then exit.
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
            log_config=log_config,
            access_log=False,
            server_header=False,  # no "server: uvicorn": the stack is nobody else's business
        )
    return EXIT_OK


@contextlib.contextmanager
def _metrics_shared_by(workers: int) -> Iterator[None]:
    """With several workers, a directory where each writes its metrics, so that a scrape of
    any worker answers for all of them (prometheus_client's multiprocess mode). Removed at
    exit; an operator's own PROMETHEUS_MULTIPROC_DIR is used as it is."""
    from app.operations.metrics import MULTIPROCESS_ENV

    if workers == 1 or os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="carelevel-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_ENV]
        shutil.rmtree(directory, ignore_errors=True)


def _migrate(args: argparse.Namespace) -> int:
    import asyncio

    from app.kernel.db import create_engine
    from app.kernel.migrate import upgrade_to_head
    from app.kernel.settings import get_settings

    async def run() -> None:
        engine = create_engine(_using_database(get_settings()))
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("The database schema is up to date.")
    return EXIT_OK


def _run_with_database(work: Any) -> Any:
    """Run ``work(sessions)`` against the configured database (the embedded SQLite one is
    migrated first, as ``serve`` does; Postgres must be migrated already)."""
    import asyncio

    from app.kernel.db import create_engine, create_sessionmaker
    from app.kernel.migrate import check_schema_is_current, upgrade_to_head
    from app.kernel.settings import get_settings

    async def run() -> Any:
        settings = _using_database(get_settings())
        engine = create_engine(settings)
        try:
            if settings.is_sqlite:
                await upgrade_to_head(engine)
            else:
                await check_schema_is_current(engine)
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _using_database(settings: Settings) -> Settings:
    """Say on stderr which database the command works on (its password masked), as
    ``serve`` run from the same directory would find it: the same settings, read the same way
    (CARELEVEL_DATABASE_URL, else .env in the working directory, else carelevel.db in it)."""
    from app.kernel.db import database_shown

    shown = database_shown(settings.database_url, Path.cwd())
    print(f"carelevel: using database {shown}", file=sys.stderr)
    return settings


def _cli_caller(tenant: str, action: Any, label: str = "carelevel clients (cli)") -> Any:
    """The operator at the command line, as recorded in the tenant's audit trail."""
    from app.security.caller import Caller
    from app.security.principal import ALL_SCOPES, Principal

    principal = Principal(tenant=tenant, client_id="cli", scopes=ALL_SCOPES, label=label)
    return Caller(principal=principal, action=action)


def _clients_create(args: argparse.Namespace) -> int:
    from app.clients.service import ClientService
    from app.security.actions import Action

    if not is_tenant_id(args.tenant):
        print(
            "carelevel: --tenant must be a lowercase slug (a-z, 0-9, -), not 'shared'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        scopes = parse_scopes(" ".join(args.scopes))
    except ValueError as error:
        print(f"carelevel: {error}", file=sys.stderr)
        return EXIT_USAGE
    name = args.name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        print("carelevel: --name must be 1-200 printable characters", file=sys.stderr)
        return EXIT_USAGE

    async def work(sessions: Any) -> Any:
        caller = _cli_caller(args.tenant, Action.CLIENT_CREATE)
        clients = ClientService(sessions)
        return await clients.create(caller, name, scopes, created_by="carelevel clients")

    created = _run_with_database(work)
    client = created.client
    print(f"Created client {client.id} '{client.name}' of tenant '{client.tenant_id}'")
    print(f"Scopes: {', '.join(client.scopes)}")
    print("API key (shown this once; carelevel keeps only its hash):")
    print(f"  {created.api_key}")
    return EXIT_OK


def _clients_list(args: argparse.Namespace) -> int:
    from app.clients.service import ClientService

    async def work(sessions: Any) -> Any:
        return await ClientService(sessions).every(args.tenant)

    rows = _run_with_database(work)
    if not rows:
        print("No clients.")
        return EXIT_OK
    print(f"{'key prefix':<13} {'tenant':<20} {'state':<8} {'name':<24} scopes")
    for client in rows:
        state = "revoked" if client.revoked_at else "active"
        print(
            f"{client.key_prefix:<13} {client.tenant_id:<20} {state:<8} {client.name[:24]:<24} "
            f"{' '.join(client.scopes)}   id {client.id}"
        )
    return EXIT_OK


def _clients_revoke(args: argparse.Namespace) -> int:
    from app.clients.service import ClientService
    from app.security.actions import Action

    async def work(sessions: Any) -> Any:
        return await ClientService(sessions).revoke_any(
            args.client, lambda tenant: _cli_caller(tenant, Action.CLIENT_REVOKE)
        )

    client = _run_with_database(work)
    if client is None:
        print(f"carelevel: no client with id or key prefix '{args.client}'", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"Revoked client {client.id} '{client.name}' ({client.key_prefix}) of tenant "
        f"'{client.tenant_id}'. Running services stop accepting its key within "
        "CARELEVEL_CREDENTIAL_CACHE_SECONDS."
    )
    return EXIT_OK


def _on_rule_sets(call: Callable[[Any], Awaitable[Any]]) -> tuple[Any, int]:
    """``call(service)`` with a rule-set service on the configured database: its result and
    EXIT_OK, or None and EXIT_FAILED after saying what the service refused (an unknown
    version, a draft…)."""
    from app.kernel.errors import AppError
    from app.kernel.settings import get_settings
    from app.rulesets.cache import RuleSetCache
    from app.rulesets.resolve import RuleSets
    from app.rulesets.service import RuleSetService
    from app.screenings.overrides import decided_screenings
    from app.screenings.repository import recent_screenings_of_key

    async def work(sessions: Any) -> Any:
        rule_sets = RuleSets(RuleSetCache(), get_settings().operator_tenant)
        return await call(
            RuleSetService(sessions, rule_sets, recent_screenings_of_key, decided_screenings)
        )

    try:
        return _run_with_database(work), EXIT_OK
    except AppError as error:
        print(f"carelevel: {error.detail}", file=sys.stderr)
        return None, EXIT_FAILED


def _rules_versions(args: argparse.Namespace) -> int:
    async def versions(service: Any) -> Any:
        rows = await service.versions(None, args.owner, args.key)
        return [await service.version(None, args.owner, args.key, row.version) for row in rows]

    rows, code = _on_rule_sets(versions)
    if code:
        return code
    print(f"{'version':>7}  {'status':<9} {'label':<12} {'sha256':<13} published")
    for row in rows:
        published = row.published_at.isoformat(timespec="minutes") if row.published_at else "-"
        label = str(row.content.get("version", ""))
        print(f"{row.version:>7}  {row.status:<9} {label:<12} {row.sha256[:12]}  {published}")
    return EXIT_OK


def _rules_diff(args: argparse.Namespace) -> int:
    from app.kernel.settings import get_settings

    diff, code = _on_rule_sets(
        lambda service: service.diff(
            None,
            args.owner,
            args.key,
            args.from_version,
            args.to_version,
            min_count=get_settings().override_report_min_count,
        )
    )
    if code:
        return code
    print(f"{args.owner}/{args.key}: version {diff.from_version} → {diff.to_version}")
    for change in ("added", "removed", "changed"):
        ids = [rule.rule_id for rule in diff.rules if rule.change == change]
        print(f"Rules {change}: {len(ids)}")
        for rule_id in ids:
            print(f"  {rule_id}")
    if diff.other_changes:
        print(f"Other changes: {', '.join(diff.other_changes)}")
    print(
        f"Test cases whose outcome differs: {len(diff.behaviour_changes)} of "
        f"{diff.cases_compared} compared"
    )
    for case in diff.behaviour_changes:
        changed = [
            f"{name} {before} → {case.after.get(name)}"
            for name, before in case.before.items()
            if before != case.after.get(name)
        ]
        print(f"  {case.case}: {'; '.join(changed)}")
    return EXIT_OK


def _rules_simulate(args: argparse.Namespace) -> int:
    from app.kernel.settings import get_settings

    report, code = _on_rule_sets(
        lambda service: service.simulate(
            None,
            args.owner,
            args.key,
            args.version,
            max(1, args.sample),
            get_settings().override_report_min_count,
        )
    )
    if code:
        return code
    print(
        f"{args.owner}/{args.key} version {report.version}: {report.screenings_considered} "
        f"most recent stored screenings re-evaluated (every tenant)"
    )
    print(f"Level changes: {report.changed}")
    for move in report.transitions:
        if move.from_level != move.to_level:
            print(f"  {move.from_level} → {move.to_level}: {move.count}")
    for title, changes in (
        ("Urgency changes", report.urgency_changes),
        ("IOP verdict changes", report.verdict_changes),
    ):
        print(f"{title}: {sum(change.count for change in changes)}")
        for change in changes:
            print(f"  {change.before} → {change.after}: {change.count}")
    return EXIT_OK


def _rules_activate(args: argparse.Namespace) -> int:
    from app.kernel.settings import get_settings
    from app.security.actions import Action

    tenant = get_settings().operator_tenant if args.owner == "shared" else args.owner
    caller = _cli_caller(tenant, Action.VERSION_ACTIVATE, "carelevel rules (cli)")
    result, code = _on_rule_sets(
        lambda service: service.activate(caller, args.owner, args.key, args.version)
    )
    if code:
        return code
    previous = result.previous_active_version
    print(
        f"Version {result.version} of {args.owner}/{args.key} is active"
        + (f" (it replaces version {previous})" if previous else " (it already was)")
        + ". Every running process decides new screenings with it within "
        "CARELEVEL_RULE_SET_REFRESH_SECONDS; stored screenings keep replaying under the versions "
        "that decided them."
    )
    return EXIT_OK


def _rules_facts(args: argparse.Namespace) -> int:
    from app.engine.catalogue import render_catalogue

    print(render_catalogue())
    return EXIT_OK


def _on_retention(call: Callable[[Any], Awaitable[Any]]) -> Any:
    """``call(service)`` with a retention service on the configured database."""
    from app.kernel.settings import get_settings
    from app.retention.service import RetentionService

    settings = get_settings()

    async def work(sessions: Any) -> Any:
        return await call(RetentionService(sessions.kw["bind"], sessions, settings))

    return _run_with_database(work)


def _partitions_ensure(args: argparse.Namespace) -> int:
    from app.kernel.db import utcnow
    from app.kernel.months import MONTHS_AHEAD_MAX

    ahead = args.months_ahead
    if ahead is not None and not 1 <= ahead <= MONTHS_AHEAD_MAX:
        print(f"carelevel: --months-ahead must be 1 to {MONTHS_AHEAD_MAX}", file=sys.stderr)
        return EXIT_USAGE
    done = _on_retention(lambda service: service.maintain(utcnow(), ahead))
    for name in done.created:
        print(f"Created {name}.")
    if done.moved:
        print(f"Moved {done.moved} rows out of the default partitions into their months'.")
    if not done.created:
        print("No partition was missing.")
    return EXIT_OK


def _partitions_list(args: argparse.Namespace) -> int:
    listed = _on_retention(lambda service: service.partitions())
    print(f"{'table':<13} {'partition':<22} {'from':<11} {'to':<11} rows (estimate)")
    for table, partitions in listed.items():
        for partition, rows in partitions:
            lower, upper = (
                "(default)" if partition.is_default else f"{bound:%Y-%m-%d}" if bound else "-"
                for bound in (partition.lower, partition.upper)
            )
            upper = "" if partition.is_default else upper
            shown = "?" if rows is None else str(rows)
            print(f"{table:<13} {partition.name:<22} {lower:<11} {upper:<11} {shown}")
    return EXIT_OK


def _retention_show(args: argparse.Namespace) -> int:
    from app.kernel.record_keeping import in_years

    policies = _on_retention(lambda service: service.policies())

    def periods(retention: Any) -> str:
        return (
            f"screenings {in_years(retention.screenings_years)}, "
            f"audit events {in_years(retention.audit_years)}"
        )

    print(
        f"Default: {periods(policies.default)} (CARELEVEL_SCREENING_RETENTION_YEARS, "
        "CARELEVEL_AUDIT_RETENTION_YEARS)"
    )
    if args.tenant is not None:
        own = "its own" if args.tenant in policies.tenants else "the default"
        print(f"Tenant {args.tenant}: {periods(policies.of(args.tenant))} ({own})")
        return EXIT_OK
    for tenant, retention in sorted(policies.tenants.items()):
        print(f"Tenant {tenant}: {periods(retention)}")
    return EXIT_OK


def _retention_set(args: argparse.Namespace) -> int:
    from app.kernel.record_keeping import Records, in_years, retention_years
    from app.security.actions import Action

    if not is_tenant_id(args.tenant):
        print(
            "carelevel: --tenant must be a lowercase slug (a-z, 0-9, -), not 'shared'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.screenings_years is None and args.audit_years is None:
        print("carelevel: give --screenings-years, --audit-years or both", file=sys.stderr)
        return EXIT_USAGE
    try:
        asked: tuple[tuple[Records, int | None], ...] = (
            ("screenings", args.screenings_years),
            ("audit", args.audit_years),
        )
        for records, years in asked:
            if years is not None:
                retention_years(records, years)
    except ValueError as error:
        print(f"carelevel: {error}", file=sys.stderr)
        return EXIT_USAGE
    caller = _cli_caller(args.tenant, Action.RETENTION_SET, "carelevel retention (cli)")
    retention = _on_retention(
        lambda service: service.set_policy(caller, args.screenings_years, args.audit_years)
    )
    print(
        f"Tenant {args.tenant} keeps its screenings {in_years(retention.screenings_years)} and "
        f"its audit events {in_years(retention.audit_years)} (recorded in its audit trail)."
    )
    return EXIT_OK


def _retention_expire(args: argparse.Namespace) -> int:
    from app.kernel.db import utcnow
    from app.kernel.settings import get_settings
    from app.security.actions import Action

    operator = get_settings().operator_tenant
    caller = _cli_caller(operator, Action.RETENTION_EXPIRE, "carelevel retention (cli)")
    report = _on_retention(lambda service: service.expire(caller, utcnow(), dry_run=args.dry_run))
    for table in report.tables:
        since = f"{table.kept_by_all_from:%Y-%m-%d}"
        print(
            f"{table.table}: rows before {since} are past every tenant's retention "
            f"(pg_partman keeps its partitions {table.retention_years} years)"
        )
        for name, rows in table.dropped:
            print(f"  partition {name}: {rows} rows {'to drop' if args.dry_run else 'dropped'}")
        for tenant, rows in sorted(table.swept.items()):
            if rows:
                print(f"  tenant {tenant}: {rows} rows past its retention")
    removed = ", ".join(f"{table} {rows}" for table, rows in sorted((+report.removed).items()))
    if args.dry_run:
        print(f"Would remove: {removed or 'nothing'}. Nothing was changed.")
    else:
        for name in report.created:
            print(f"Created {name}.")
        print(f"Removed: {removed or 'nothing'} (recorded in the audit trail of '{operator}').")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""The `undersigned` command: database, accounts, the mail worker, the demo organization and the server."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Self

import typer
from rich.console import Console

from app.core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from app.clients import anonymous as anonymous_client
    from app.clients.keycheck import KeyCheck
    from app.core.runtime import Runtime

cli = typer.Typer(help="Undersigned: employee petitions and collective feedback.", no_args_is_help=True)
db_cli = typer.Typer(help="Database migrations.", no_args_is_help=True)
users_cli = typer.Typer(help="Accounts.", no_args_is_help=True)
demo_cli = typer.Typer(help="The demo organization for development.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(users_cli, name="users")
cli.add_typer(demo_cli, name="demo")
console = Console()


def _runtime(settings: Settings) -> Runtime:
    from app.core.clock import SystemClock
    from app.core.runtime import build_runtime
    from app.core.templating import build_templates

    return build_runtime(settings, clock=SystemClock(), templates=build_templates(settings).env)


def _sessions(settings: Settings) -> sessionmaker[Session]:
    from app.core.database import build_engine, build_sessionmaker

    return build_sessionmaker(build_engine(settings.database_url), writes=True)


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations to the configured database."""
    from app.core import migrations

    settings = Settings()
    _ensure_sqlite_folder(settings.database_url)
    migrations.upgrade(settings.database_url, revision)
    console.print(f"[green]Database is at {revision}.[/green]")


@db_cli.command("check")
def db_check() -> None:
    """Fail if the models differ from the migrated schema."""
    from app.core import migrations

    migrations.check(Settings().database_url)
    console.print("[green]No drift between models and migrations.[/green]")


@users_cli.command("create-admin")
def create_admin(
    email: str = typer.Argument(..., help="Work address of the new admin."),
    name: str = typer.Option("Admin", help="Display name."),
    password: str | None = typer.Option(None, help="Password; asked for when not given.", hide_input=True),
    no_password: bool = typer.Option(False, "--no-password", help="No password: sign in with emailed links."),
) -> None:
    """Create an admin account (or make an existing account admin)."""
    from app.accounts import service
    from app.core.errors import AppError

    settings = Settings()
    if password is None and not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    rt = _runtime(settings)
    sessions = _sessions(settings)
    try:
        with sessions.begin() as db:
            user = service.create_admin(
                db=db, rt=rt, raw_email=email, display_name=name, password=None if no_password else password
            )
            address = user.email
    except AppError as error:
        console.print(f"[red]{error.summary}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[green]{address} is an admin.[/green]")


@cli.command("worker")
def worker(once: bool = typer.Option(False, help="Do one round, then stop.")) -> None:
    """Send queued mail and close petitions past their deadline, until stopped (production)."""
    from app import jobs
    from app.core.logging import configure_logging

    configure_logging()
    settings = Settings()
    sessions = _sessions(settings)
    rt = _runtime(settings)
    while True:
        if once:
            done = jobs.run_once(sessions=sessions, rt=rt)
            console.print(
                f"Sent {done['sent']} message{'s' if done['sent'] != 1 else ''}; "
                f"closed {done['closed']} petition{'s' if done['closed'] != 1 else ''}."
            )
            return
        try:
            done = jobs.run_once(sessions=sessions, rt=rt)
        except Exception:
            # A round that fails (the database briefly unreachable, say) is done again; a worker that stopped
            # would leave mail unsent and deadlines unclosed until someone noticed.
            logging.getLogger("undersigned.jobs").exception("worker round failed, will try again")
            time.sleep(settings.outbox_poll_seconds)
            continue
        if done["sent"] == 0:
            time.sleep(settings.outbox_poll_seconds)


@demo_cli.command("seed")
def demo_seed() -> None:
    """Create the demo organization once (safe to run again); print its logins."""
    from app import demo

    settings = Settings()
    accounts = demo.seed(sessions=_sessions(settings), rt=_runtime(settings))
    console.print("[bold]Demo logins[/bold] (password for all: [bold]" + demo.DEMO_PASSWORD + "[/bold])")
    for role, email in accounts:
        console.print(f"  {role:<10} {email}")


@cli.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, reload: bool = False) -> None:
    """Run the web server (uvicorn, no access log: ours carries no addresses or query strings)."""
    import uvicorn

    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        # Named rather than left to "auto", which quietly falls back to the pure-Python loop and parser when they
        # are missing: uvicorn[standard] (a dependency) brings both. bench/request_stack.py measures the two.
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


def _ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def main() -> None:
    cli()


tally_cli = typer.Typer(help="Signature counts.", no_args_is_help=True)
cli.add_typer(tally_cli, name="tally")


@tally_cli.command("recount")
def tally_recount(dry_run: bool = typer.Option(False, "--dry-run", help="Report drift without repairing it.")) -> None:
    """Compare every petition's counter with its signature rows and repair any drift."""
    from app.signatures import integrity

    settings = Settings()
    with _sessions(settings).begin() as db:
        drifts = integrity.recount(db=db, repair=not dry_run)
    if not drifts:
        console.print("[green]Every counter matches its signatures.[/green]")
        return
    verb = "would repair" if dry_run else "repaired"
    for drift in drifts:
        console.print(f"petition {drift.petition_id}: counter {drift.counted}, signatures {drift.actual} ({verb})")
    console.print(f"{len(drifts)} petition{'s' if len(drifts) != 1 else ''} {verb}.")


audit_cli = typer.Typer(help="The audit log.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 if any entry was changed, removed or inserted."""
    from app.audit import service as audit

    with _sessions(Settings())() as db:
        result = audit.verify(db=db)
    if result.intact:
        console.print(f"[green]The audit log is intact: {result.entries} entries.[/green]")
        return
    for problem in result.problems:
        console.print(f"[red]{problem}[/red]")
    raise typer.Exit(1)


@cli.command("export")
def export(
    petition_id: int = typer.Argument(..., min=1, max=2**31 - 1, help="The petition's number."),
    fmt: str = typer.Option("csv", "--format", help="csv, json, xlsx or pdf."),
    kind: str = typer.Option("tally", "--kind", help="tally (the numbers) or signers (the names signers showed)."),
    out: Path = typer.Option(..., "--out", help="The file to write.", dir_okay=False),
) -> None:
    """Export a petition's tally or signer list to a file; recorded in the audit log like any export.

    The file appears only when complete (written beside it, then renamed); the audit record is written once
    the output's folder is known to be writable.
    """
    import os
    import tempfile

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from app.core.database import build_engine, build_sessionmaker
    from app.core.errors import AppError
    from app.petitions import service as petitions
    from app.reports import exports
    from app.reports import service as reports

    settings = Settings()
    rt = _runtime(settings)
    engine = build_engine(settings.database_url)
    folder = out.resolve().parent
    try:
        reports.check_choice(kind=kind, fmt=fmt)
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            console.print(f"[red]Cannot write in {folder}: no such folder, or no permission.[/red]")
            raise typer.Exit(2)
        with build_sessionmaker(engine, writes=True).begin() as db:
            petition = petitions.get_or_404(db=db, petition_id=petition_id)
            reports.record_export(db=db, rt=rt, actor=None, petition=petition, kind=kind, fmt=fmt, via="command line")
    except AppError as error:
        console.print(f"[red]{error.summary}[/red]")
        raise typer.Exit(2) from None
    # Read without write intent: on SQLite a long export must not hold the write lock signers need.
    with (
        build_sessionmaker(engine)() as db,
        tempfile.NamedTemporaryFile(dir=folder, prefix=".export-", delete=False) as handle,
    ):
        try:
            if kind == "tally":
                handle.write(reports.tally_file(db=db, rt=rt, petition=petition, fmt=fmt))
            else:
                total = exports.named_count(db=db, petition_id=petition.id)
                if fmt == "pdf":
                    total = min(total, exports.PDF_SIGNER_LIMIT)
                columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
                with Progress(*columns, console=console, transient=True) as progress:
                    task = progress.add_task("Names", total=total)
                    for chunk in reports.signer_file(
                        db=db, rt=rt, petition=petition, fmt=fmt, on_rows=lambda count: progress.advance(task, count)
                    ):
                        handle.write(chunk)
        except BaseException:
            os.unlink(handle.name)
            raise
    os.replace(handle.name, out)
    engine.dispose()
    console.print(f"[green]Wrote {out} ({out.stat().st_size:,} bytes).[/green]")


client_cli = typer.Typer(
    help="The wallet from a terminal: collect credentials early, act anonymously later.", no_args_is_help=True
)
cli.add_typer(client_cli, name="client")
wallet_cli = typer.Typer(
    help="Your wallet secret: the one the browser holds too, so both are one wallet.", no_args_is_help=True
)
client_cli.add_typer(wallet_cli, name="wallet")
WALLET_FILE = Path.home() / ".undersigned" / "wallet.json"


def _wallet_option() -> Path:
    return typer.Option(
        WALLET_FILE,
        "--wallet",
        help="Where your credentials and queue are kept (the session's cookies are kept beside it, in wallet.cookies).",
    )


def _email_option() -> str | None:
    return typer.Option(
        None,
        "--email",
        envvar="UNDERSIGNED_EMAIL",
        help="Your work address (asked for when the wallet does not know it).",
    )


def _password_option() -> str | None:
    return typer.Option(
        None,
        "--password",
        envvar="UNDERSIGNED_PASSWORD",
        hide_input=True,
        help="Asked for only when a sign-in is needed.",
    )


def _within_option() -> float:
    return typer.Option(
        12.0,
        "--within",
        min=0.1,
        max=24 * 14,
        metavar="HOURS",
        help="Send at a random moment between a sixth of HOURS and HOURS from now (default: between 2 and 12 hours).",
    )


def _now_option() -> bool:
    return typer.Option(False, "--now", help="Send at once (a warning says what that costs).")


def _small_crowd_option() -> bool:
    return typer.Option(
        False,
        "--accept-small-crowd",
        help="Act anonymously even when fewer colleagues than the minimum group size hold the "
        "credential (you are told how many first).",
    )


def _log_key_option() -> str | None:
    return typer.Option(
        None,
        "--log-key",
        envvar="UNDERSIGNED_LOG_KEY",
        help="The deployment's log verifier key, pinned (name+keyid+base64key).",
    )


def _witness_option() -> list[str]:
    return typer.Option(
        [],
        "--witness",
        help="A witness's verifier key: require its cosignature on the checkpoint "
        "the keys are checked under (repeat for several).",
    )


def _state_option() -> Path | None:
    return typer.Option(
        None,
        "--state",
        help="The log keys and checkpoints seen before (default: verified.json "
        "beside the wallet, the file `undersigned verify` keeps).",
    )


class _ClientRun:
    """One client command: the wallet (locked, saved however the command ends), its connection with the session
    kept from earlier runs, and the key check every credential passes."""

    def __init__(
        self,
        petition_url: str | None,
        wallet_file: Path,
        *,
        email: str | None = None,
        password: str | None = None,
        log_key: str | None = None,
        witnesses: list[str] | None = None,
        state_file: Path | None = None,
        server: str | None = None,
    ) -> None:
        from app.clients import anonymous as client

        self.client = client
        self.wallet_file = wallet_file
        self.target = client.parse_petition_url(petition_url) if petition_url is not None else None
        # The deployment: the petition's, or (for commands about the wallet itself) any address on it.
        self.base_url = (
            self.target.base_url if self.target else (client.parse_server_url(server) if server is not None else None)
        )
        self._email, self._password = email, password
        self._log_key, self._witnesses = log_key, witnesses or []
        self._state_file = state_file or wallet_file.with_name("verified.json")
        self.session: anonymous_client.Session | None = None

    def __enter__(self) -> Self:
        self._lock = self.client.locked(self.wallet_file)
        self._lock.__enter__()
        try:
            self.wallet = self.client.load_wallet(self.wallet_file)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self.connection: anonymous_client.Connection | None = (
            self.client.Connection(self.base_url, self.client.jar_path(self.wallet_file)) if self.base_url else None
        )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.client.save_wallet(self.wallet_file, self.wallet)
            if self.connection is not None:
                self.connection.save_cookies()
        finally:
            self._lock.__exit__(None, None, None)

    def save(self) -> None:
        self.client.save_wallet(self.wallet_file, self.wallet)

    @property
    def petition(self) -> anonymous_client.Target:
        """The petition the command names (every command but the wallet's own takes one)."""
        if self.target is None:
            raise self.client.ClientError(
                "Give the petition's address, like https://undersigned.example.org/petitions/42"
            )
        return self.target

    @property
    def online(self) -> anonymous_client.Connection:
        """The connection to the deployment (a command about the wallet alone may have none)."""
        if self.connection is None:
            raise self.client.ClientError("Give the server's address, like https://undersigned.example.org")
        return self.connection

    def keys(self, connection: anonymous_client.Connection) -> KeyCheck:
        from app.clients.keycheck import KeyCheck

        return KeyCheck(
            connection,
            state_file=self._state_file,
            log_key=self._log_key,
            witnesses=self._witnesses,
            remembered=self.wallet.setdefault("keys", {}),
        )

    def email(self) -> str | None:
        if self._email or self.base_url is None:
            return self._email
        return self.client.known_email(self.wallet, self.base_url)

    def signed_in(self) -> anonymous_client.Session:
        if self.session is None:
            email = self.email() or typer.prompt("Work email address")
            self.session = self.client.Session(
                self.online,
                self.wallet,
                email=email,
                password=lambda: self._password or typer.prompt("Password", hide_input=True),
            )
        return self.session

    def collect(self, purposes: tuple[str, ...] | None = None) -> anonymous_client.Collected:
        """Collect (see client.collect), and say what a new wallet or a credential held elsewhere means."""
        collected = self.client.collect(
            self.signed_in(),
            self.wallet,
            keys=self.keys(self.online),
            save=self.save,
            purposes=purposes or self.client.PURPOSES,
        )
        if collected.started:
            typer.echo(
                "Started your wallet: every anonymous credential of yours derives from its secret, kept in "
                f"{self.wallet_file}. `undersigned client wallet export` shows its recovery code: write it "
                "down, it brings the wallet to another device or back after a loss."
            )
        for petition_id, purpose in collected.elsewhere:
            what = "signing token" if purpose == "sign" else "discussion credential"
            typer.echo(
                f"Petition {petition_id}: your {what} was collected by another device before your wallet "
                "had a secret, and only that device holds it."
            )
        return collected

    def tell_crowd(self, purpose: str, accept_small: bool) -> None:
        """How many colleagues an anonymous action here hides among (the public figure, asked without a cookie);
        below the minimum group size, refuse unless the person accepts it knowingly."""
        assert self.target is not None
        status, figures = self.online.anonymous("GET", f"/api/v1/petitions/{self.target.petition_id}/anonymity")
        if status != 200 or not isinstance(figures, dict):
            raise self.client.ClientError(
                "Could not read how many colleagues you would be hidden among; nothing was queued. Try again later."
            )
        crowd, minimum = figures.get("signing" if purpose == "sign" else "discussion"), figures["min_group_size"]
        if crowd is None:
            return  # the server refuses the action itself, in its own words
        typer.echo(
            f"You are hidden among {crowd} colleague{'s who hold' if crowd != 1 else ' who holds'} this "
            "petition's "
            f"{'signing token' if purpose == 'sign' else 'discussion credential'}"
            f"{' and did not use it with their name' if purpose == 'sign' else ''}."
        )
        typer.echo(
            f"It is published together with at least {minimum} others; if fewer are sent in those hours, it "
            "waits up to the site's longest delay and then goes out in a smaller batch, noted on the "
            "petition's timeline, hiding you only among the colleagues active in those hours."
        )
        if crowd < minimum and not accept_small:
            raise self.client.ClientError(
                f"That is fewer than {minimum}: in a group this small, someone who counts could pick you out. "
                "Nothing was queued. Wait until more colleagues collect theirs, or add --accept-small-crowd."
            )

    def send_now(self, item: dict[str, object], what: str) -> None:
        """--now: the warnings first, then the one queued action, over the cookie-less connection."""
        typer.echo("Warning: " + self.client.NOW_WARNING.format(what=what))
        if self.session is not None and self.session.signed_in_now:
            typer.echo("Warning: " + self.client.JUST_SIGNED_IN)
        item["due"] = self.client.clock()
        from app.clients.answer import SENDERS

        lines, failed = self.client.send_due(
            self.wallet, now=self.client.clock(), keys=self.keys, only=str(item["id"]), senders=SENDERS
        )
        for line in lines:
            typer.echo(line)
        if failed:
            raise typer.Exit(1)


def _fail(error: Exception) -> typer.Exit:
    typer.echo(str(error), err=True)
    return typer.Exit(1)


@client_cli.command("collect")
def client_collect(
    petition_url: str = typer.Argument(..., help="Any address on the deployment, e.g. https://host/petitions/42."),
    email: str | None = _email_option(),
    password: str | None = _password_option(),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Collect every credential due (a signing token and a discussion credential for each open petition, a
    credential for each open poll put to every member, a signer credential for each petition you signed by name),
    in one request, and nothing else. Do it long before you use them: the later the use, the less it says."""
    from app.clients.anonymous import ClientError

    try:
        with _ClientRun(
            petition_url,
            wallet_file,
            email=email,
            password=password,
            log_key=log_key,
            witnesses=witness,
            state_file=state_file,
        ) as run:
            collected = run.collect(run.client.ALL_PURPOSES).held
    except ClientError as error:
        raise _fail(error) from None
    if not collected:
        typer.echo("Nothing due: this wallet holds a credential for every open petition you have not signed by name.")
        return
    kinds = {"sign": "a signing token", "discuss": "a discussion credential", "signer": "a signer credential"}
    on_petitions = [(number, purpose) for number, purpose in collected if purpose != "ballot"]
    for petition_id in sorted({number for number, _purpose in on_petitions}):
        held = [kinds.get(purpose, purpose) for number, purpose in on_petitions if number == petition_id]
        typer.echo(f"Petition {petition_id}: {' and '.join(held)}.")
    for ballot_id in sorted(number for number, purpose in collected if purpose == "ballot"):
        typer.echo(f"Poll {ballot_id}: its credential.")
    typer.echo(
        "Collected and kept in the wallet. Use them later: `client sign --anonymous` and `client comment "
        "--anonymous` queue their sending at a random later moment, and `client answer` sends an answer at once "
        "with a credential collected here."
    )


@client_cli.command("sign")
def client_sign(
    petition_url: str = typer.Argument(..., help="The petition's address, e.g. https://host/petitions/42."),
    anonymous: bool = typer.Option(
        False, "--anonymous", help="Sign anonymously: queued, then sent without cookies by `client send`."
    ),
    public: bool = typer.Option(False, "--public", help="Sign with your name shown to everyone."),
    forfeit: bool = typer.Option(
        False,
        "--forfeit",
        help=(
            "Sign with your name without the token, when it is on no device you have here (the recovery code lost, "
            "no device to link): you give up signing this petition anonymously, and the signature log counts one "
            "forfeit, without your name."
        ),
    ),
    within: float = _within_option(),
    now: bool = _now_option(),
    accept_small_crowd: bool = _small_crowd_option(),
    email: str | None = _email_option(),
    password: str | None = _password_option(),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Sign a petition with its token (collected first if this wallet holds none). Anonymously, the signature is
    queued and sent later at a random moment; with a name, at once."""
    from app.clients.anonymous import ClientError, WalletElsewhere

    if forfeit and anonymous:
        typer.echo("--forfeit signs with your name: it cannot go with --anonymous.", err=True)
        raise typer.Exit(2)
    try:
        with _ClientRun(
            petition_url,
            wallet_file,
            email=email,
            password=password,
            log_key=log_key,
            witnesses=witness,
            state_file=state_file,
        ) as run:
            base, petition_id = run.petition.base_url, run.petition.petition_id
            token = run.client.held(run.wallet, base, run.email(), petition_id, "sign")
            if token is None or token["status"] in ("blinded", "lost"):
                try:
                    run.collect()
                except WalletElsewhere:
                    if not forfeit:  # with --forfeit, the token stays where it is and is given up
                        raise
            visibility = "anonymous" if anonymous else "public" if public else "organizers"
            if anonymous:
                run.tell_crowd("sign", accept_small_crowd)
            message, item = run.client.sign(
                wallet=run.wallet,
                base_url=base,
                email=run.email(),
                petition_id=petition_id,
                session=run.signed_in() if visibility != "anonymous" else run.session,
                visibility=visibility,
                now=run.client.clock(),
                within_hours=within,
                forfeit=forfeit,
            )
            if item is not None and now:
                run.send_now(item, "signature")
            else:
                typer.echo(message)
    except ClientError as error:
        raise _fail(error) from None


@client_cli.command("comment")
def client_comment(
    petition_url: str = typer.Argument(..., help="The petition's address."),
    text: str = typer.Option(..., "--text", help="The comment (Markdown)."),
    anonymous: bool = typer.Option(
        False,
        "--anonymous",
        help="Required: the command line posts anonymous comments only (post named ones on the petition's page).",
    ),
    reply_to: int | None = typer.Option(None, "--reply-to", min=1, max=2**31 - 1, help="The comment answered."),
    within: float = _within_option(),
    now: bool = _now_option(),
    accept_small_crowd: bool = _small_crowd_option(),
    email: str | None = _email_option(),
    password: str | None = _password_option(),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Comment anonymously with the petition's discussion credential: queued, then sent without cookies at a
    random later moment by `client send`, under a pseudonym only this wallet can compute."""
    from app.clients.anonymous import ClientError

    if not anonymous:
        typer.echo(
            "The command line posts anonymous comments only: add --anonymous, or comment with your name on "
            "the petition's page.",
            err=True,
        )
        raise typer.Exit(2)
    try:
        with _ClientRun(
            petition_url,
            wallet_file,
            email=email,
            password=password,
            log_key=log_key,
            witnesses=witness,
            state_file=state_file,
        ) as run:
            base, petition_id = run.petition.base_url, run.petition.petition_id
            credential = run.client.held(run.wallet, base, run.email(), petition_id, "discuss")
            if credential is None or credential["status"] in ("blinded", "lost"):
                run.collect()
            run.tell_crowd("discuss", accept_small_crowd)
            item, name = run.client.comment(
                wallet=run.wallet,
                base_url=base,
                email=run.email(),
                petition_id=petition_id,
                text=text,
                reply_to=reply_to,
                now=run.client.clock(),
                within_hours=within,
            )
            typer.echo(
                f"Your comment will carry the name {name}: only this wallet's credential makes that name, "
                "and whoever holds it can edit or delete the comment."
            )
            if now:
                run.send_now(item, "comment")
            else:
                typer.echo(
                    f"Queued: it will be sent {run.client.when(item['due'], run.client.clock())}, "
                    f"{run.client.WHY}. `undersigned client send` sends it then, without signing in."
                )
    except ClientError as error:
        raise _fail(error) from None


def _change_comment(
    petition_url: str,
    comment_id: int,
    text: str | None,
    *,
    within: float,
    now: bool,
    email: str | None,
    wallet_file: Path,
    log_key: str | None,
    witness: list[str],
    state_file: Path | None,
) -> None:
    from app.clients.anonymous import ClientError

    what = "deletion" if text is None else "edit"
    try:
        with _ClientRun(
            petition_url, wallet_file, email=email, log_key=log_key, witnesses=witness, state_file=state_file
        ) as run:
            item = run.client.change_comment(
                wallet=run.wallet,
                base_url=run.petition.base_url,
                email=run.email(),
                petition_id=run.petition.petition_id,
                comment_id=comment_id,
                text=text,
                now=run.client.clock(),
                within_hours=within,
            )
            if now:
                run.send_now(item, what)
            else:
                typer.echo(
                    f"Queued: the {what} will be sent {run.client.when(item['due'], run.client.clock())}, "
                    f"{run.client.WHY}."
                )
    except ClientError as error:
        raise _fail(error) from None


@client_cli.command("edit-comment")
def client_edit_comment(
    petition_url: str = typer.Argument(..., help="The petition's address."),
    comment_id: int = typer.Argument(..., min=1, max=2**31 - 1, help="The anonymous comment's number."),
    text: str = typer.Option(..., "--text", help="The new text (Markdown)."),
    within: float = _within_option(),
    now: bool = _now_option(),
    email: str | None = _email_option(),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Edit an anonymous comment made with this wallet's discussion credential (queued like the comment, sent
    without cookies)."""
    _change_comment(
        petition_url,
        comment_id,
        text,
        within=within,
        now=now,
        email=email,
        wallet_file=wallet_file,
        log_key=log_key,
        witness=witness,
        state_file=state_file,
    )


@client_cli.command("delete-comment")
def client_delete_comment(
    petition_url: str = typer.Argument(..., help="The petition's address."),
    comment_id: int = typer.Argument(..., min=1, max=2**31 - 1, help="The anonymous comment's number."),
    within: float = _within_option(),
    now: bool = _now_option(),
    email: str | None = _email_option(),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Delete an anonymous comment made with this wallet's discussion credential (queued like the comment, sent
    without cookies)."""
    _change_comment(
        petition_url,
        comment_id,
        None,
        within=within,
        now=now,
        email=email,
        wallet_file=wallet_file,
        log_key=log_key,
        witness=witness,
        state_file=state_file,
    )


def _account_of(run: _ClientRun, server: str | None) -> tuple[str, str]:
    """The (server, email) whose secret to export: the one named, or the only one this file holds."""
    held = run.client.secret_accounts(run.wallet)
    if server is not None:
        base = run.client.parse_server_url(server)
        email = run._email or run.client.known_email(run.wallet, base)
        matching = [(url, owner) for url, owner in held if url == base and (email is None or owner == email.lower())]
    else:
        matching = held
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise run.client.ClientError(
            "This wallet file holds no wallet secret"
            + (f" for {server}" if server else "")
            + " yet: `undersigned client collect URL` starts or collects one."
        )
    raise run.client.ClientError(
        "This wallet file holds wallets for several accounts: name one, with the server's "
        "address and --email. " + "; ".join(f"{owner} on {url}" for url, owner in matching)
    )


@wallet_cli.command("export")
def wallet_export(
    server: str | None = typer.Argument(
        None, help="Any address on the deployment (needed when this file holds wallets for several servers)."
    ),
    email: str | None = _email_option(),
    wallet_file: Path = _wallet_option(),
) -> None:
    """Print the wallet's recovery code: with it, any device (a browser's Your wallet page, or `client wallet
    import`) rebuilds the same credentials. Nothing is sent anywhere."""
    from app.anonymous import derive
    from app.clients.anonymous import ClientError

    try:
        with _ClientRun(None, wallet_file, email=email) as run:
            base, owner = _account_of(run, server)
            secret = run.client.wallet_secret(run.wallet, base, owner)
    except ClientError as error:
        raise _fail(error) from None
    typer.echo(derive.recovery_code(secret))
    typer.echo(run.client.RECOVERY_CODE_NOTE.format(email=owner, server=base))


@wallet_cli.command("import")
def wallet_import(
    server: str = typer.Argument(..., help="Any address on the deployment, e.g. https://host/petitions/42."),
    stdin: bool = typer.Option(
        False,
        "--stdin",
        help="Read the recovery code from standard input (else it is asked for, and not shown as you type).",
    ),
    email: str | None = _email_option(),
    password: str | None = _password_option(),
    wallet_file: Path = _wallet_option(),
) -> None:
    """Bring your wallet here with its recovery code (from the browser's Your wallet page, or `client wallet
    export` elsewhere). It is checked against your account's wallet first: a typo or another account's code
    changes nothing."""
    import sys

    from app.clients.anonymous import ClientError

    try:
        with _ClientRun(None, wallet_file, email=email, password=password, server=server) as run:
            code = sys.stdin.readline() if stdin else typer.prompt("Recovery code", hide_input=True)
            changed = run.client.import_code(run.signed_in(), run.wallet, code)
            owner = run.signed_in().email
    except ClientError as error:
        raise _fail(error) from None
    if not changed:
        typer.echo(f"This wallet file already holds that wallet for {owner}.")
        return
    typer.echo(
        f"Your wallet for {owner} is here now. `undersigned client collect {server}` collects its "
        "credentials, the same ones your other devices hold."
    )


@wallet_cli.command("link")
def wallet_link(
    server: str = typer.Argument(..., help="Any address on the deployment, e.g. https://host/petitions/42."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the code from standard input instead of asking."),
    email: str | None = _email_option(),
    password: str | None = _password_option(),
    wallet_file: Path = _wallet_option(),
) -> None:
    """Bring your wallet here from a device that has it: that device's Link a device page shows a code, this
    command asks for it (never on the command line, where the shell's history and the process list keep it), and
    the wallet comes sealed to a key only the two devices hold (the server carries it without being able to open
    it). It is checked against your account's wallet before it is kept."""
    import sys

    from app.clients import linking as linking_client
    from app.clients.anonymous import ClientError

    try:
        with _ClientRun(None, wallet_file, email=email, password=password, server=server) as run:
            session = run.signed_in()
            code = (
                sys.stdin.readline()
                if stdin
                else typer.prompt("Code your other device shows (XXXX-XXXX-XXXX)", hide_input=True)
            )
            secret = linking_client.answer(session.call, code)
            owner = session.email
            run.client.keep_secret(run.wallet, session.connection.base_url, owner, secret)
            for credential in run.wallet["credentials"].values():  # held by the other device: collect them again
                if credential.get("status") == "elsewhere":
                    credential["status"] = "lost"
    except (ClientError, linking_client.LinkError) as error:
        raise _fail(error) from None
    typer.echo(
        f"Your wallet for {owner} is here now. `undersigned client collect {server}` collects its "
        "credentials, the same ones your other devices hold."
    )


@client_cli.command("send")
def client_send(
    wait: bool = typer.Option(False, "--wait", help="Stay until the queue is empty, sending each at its time."),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Send every queued anonymous action whose time has come, without signing in and without any cookie (each
    key checked again first). Run it from cron or a systemd timer, or leave `--wait` running."""
    from app.clients.anonymous import ClientError
    from app.clients.answer import SENDERS

    failed: set[str] = set()
    try:
        while True:
            with _ClientRun(None, wallet_file, log_key=log_key, witnesses=witness, state_file=state_file) as run:
                lines, newly_failed = run.client.send_due(
                    run.wallet, now=run.client.clock(), keys=run.keys, skip=failed, senders=SENDERS
                )
                failed |= newly_failed
                rest = run.client.pending(run.wallet, skip=failed)
            for line in lines:
                typer.echo(line)
            if not rest:
                if not lines and not failed:
                    typer.echo("Nothing queued.")
                break
            next_due = float(rest[0]["due"])
            if not wait:
                if not lines:
                    typer.echo(
                        f"Nothing due yet: {len(rest)} queued, the next "
                        f"{run.client.when(next_due, run.client.clock())}."
                    )
                break
            typer.echo(f"Waiting: {len(rest)} queued, the next {run.client.when(next_due, run.client.clock())}.")
            run.client.sleep(min(3600.0, max(1.0, next_due - run.client.clock())))
    except ClientError as error:
        raise _fail(error) from None
    if failed:
        raise typer.Exit(1)


@client_cli.command("check")
def client_check(
    petition_url: str = typer.Argument(..., help="The petition's address."),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Confirm your anonymous signature is published (reading the whole list, so the server cannot tell which
    entry is yours); send it again, without cookies, if it is missing."""
    from app.clients.anonymous import ClientError

    try:
        with _ClientRun(petition_url, wallet_file, log_key=log_key, witnesses=witness, state_file=state_file) as run:
            bare = run.client.Connection(run.petition.base_url)  # no jar: nothing here may carry a cookie
            lines = run.client.check(
                connection=bare, wallet=run.wallet, petition_id=run.petition.petition_id, keys=run.keys(bare)
            )
    except ClientError as error:
        raise _fail(error) from None
    for line in lines:
        typer.echo(line)


@client_cli.command("answer")
def client_answer(
    ballot_url: str = typer.Argument(..., help="The poll's address, e.g. https://host/polls/7."),
    choice: list[int] = typer.Option(
        ...,
        "--choice",
        help="An option's number as the poll's page lists it, from 0; repeat for several (ranked: first choice first).",
    ),
    group: int | None = typer.Option(
        None,
        "--group",
        help="A poll put to several departments or locations: the id of yours (GET /api/v1/ballots/ID lists them) "
        "to count the answer under in the breakdown at the close. It then hides among that group's members who "
        "hold the credential, not everyone's; leave it out to count under none.",
    ),
    email: str | None = _email_option(),
    password: str | None = _password_option(),
    within: float = _within_option(),
    now: bool = _now_option(),
    wallet_file: Path = _wallet_option(),
    log_key: str | None = _log_key_option(),
    witness: list[str] = _witness_option(),
    state_file: Path | None = _state_option(),
) -> None:
    """Answer a poll anonymously (issue #25): its credential comes with your wallet's others (a poll put to every
    member) or in exchange for your signer credential (a poll put to a petition's signers); the answer is sent
    without cookies. When the credentials must be collected first (signed in), the answer is queued for a random
    later moment before the poll closes (`client send` sends it), as an anonymous signature is; with them already
    collected (`client collect`), it goes at once. Run it again with another --choice to change your answer until
    the poll closes."""
    from app.clients import answer as answering
    from app.clients.anonymous import ClientError
    from app.core import blindrsa

    try:
        target = answering.parse_ballot_url(ballot_url)
        with _ClientRun(
            None,
            wallet_file,
            email=email,
            password=password,
            log_key=log_key,
            witnesses=witness,
            state_file=state_file,
            server=target.base_url,
        ) as run:
            session = run.signed_in()
            said, item = answering.answer(
                session=session,
                wallet=run.wallet,
                target=target,
                choice=choice,
                keys=run.keys(run.online),
                now=run.client.clock(),
                within_hours=within,
                save=run.save,
                group=group,
            )
            if item is not None and now:
                run.send_now(item, "answer")
            else:
                if session.signed_in_now and item is None:
                    typer.echo("Warning: " + run.client.JUST_SIGNED_IN)
                typer.echo(said)
    except ClientError as error:
        raise _fail(error) from None
    except blindrsa.BlindSignatureError:
        raise _fail(
            ClientError(
                "A credential the server sent does not verify under the key it published: nothing was answered. "
                "Try again later; if it keeps happening, the server is not following the published rules."
            )
        ) from None


STATE_DIR = Path.home() / ".undersigned"


@cli.command("verify")
def verify_log(
    petition_url: str = typer.Argument(
        "", help="The petition's address, e.g. https://host/petitions/42, or a poll's, e.g. https://host/polls/7."
    ),
    offline: Path | None = typer.Option(None, "--offline", help="Check a log saved before, without the network."),
    save: Path | None = typer.Option(None, "--save", help="Also save what was downloaded, for --offline."),
    state_file: Path = typer.Option(
        STATE_DIR / "verified.json",
        "--state",
        help="The log keys and checkpoints seen before, checked against each time.",
    ),
    witnesses: int = typer.Option(
        0,
        "--witnesses",
        min=0,
        help="Fail unless this many of your witnesses "
        "cosigned a checkpoint at least as new as the one shown (catches a log shown "
        "to you alone).",
    ),
    witness: list[str] = typer.Option([], "--witness", help="A witness's verifier key you trust (repeat)."),
    policy: Path | None = typer.Option(None, "--policy", help="A file of witness verifier keys you trust, one a line."),
    gossip: list[str] = typer.Option(
        [],
        "--gossip",
        help="Once the log passes, send the checkpoint you verified "
        "to this witness (its C2SP tlog-witness submission prefix; any `undersigned "
        "witness --serve` will do) and fail if it saw another log (repeat).",
    ),
) -> None:
    """Check a petition's signature log: checkpoint signatures, the recomputed tree, consistency with every
    checkpoint seen before, each anonymous token, no token used twice, the tally, every figure the page and the
    API publish against what the log adds up to, with --witnesses the witnesses' cosignatures, and with --gossip
    that a witness was not shown another log.

    For a poll (issue #25): the ballot log's checkpoint and recomputed tree, entry 0's key against the published
    one, every answer's credential under that key and its choice, one counted answer per credential (the last
    revision), the committed counters, and the result recounted against the published one."""
    from app.clients import ballots as ballot_client
    from app.clients import log as client
    from app.clients.anonymous import ClientError, parse_petition_url

    offline_ballot = offline is not None and ballot_client.saved_in(offline)
    if offline_ballot or (petition_url and ballot_client.parse_ballot_url(petition_url) is not None):
        try:
            data = ballot_client.load(offline) if offline is not None else ballot_client.download(petition_url)
            if save is not None:
                ballot_client.save(data, save)
            ballot_report = ballot_client.verify(data, state_file)
        except ClientError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
        for problem in ballot_report.problems:
            typer.echo(f"problem: {problem}")
        typer.echo(ballot_report.summary())
        if not ballot_report.ok:
            raise typer.Exit(1)
        return
    try:
        fetch = None
        if offline is not None:
            log = client.load(offline)
        elif petition_url:
            fetch = client._fetcher(parse_petition_url(petition_url).base_url)
            log = client.download(petition_url, fetch)
        else:
            raise ClientError("Give the petition's address, or --offline with a folder saved before.")
        if save is not None:
            client.save(log, save)
        trusted = list(witness) + (client.read_policy(policy) if policy is not None else [])
        report = client.verify(log, state_file, witnesses=trusted, quorum=witnesses, gossip=gossip, fetch=fetch)
    except ClientError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    for problem in report.problems:
        typer.echo(f"problem: {problem}")
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@cli.command("witness")
def witness_log(
    petition_url: str = typer.Argument("", help="The petition's address (not with --serve)."),
    name: str | None = typer.Option(None, "--name", help="Your witness name, as the deployment knows it."),
    key_file: Path = typer.Option(STATE_DIR / "witness.key", "--key", help="Your Ed25519 witness key."),
    generate: bool = typer.Option(False, "--generate", help="Make the key if it does not exist yet."),
    state_file: Path = typer.Option(
        STATE_DIR / "witnessed.json", "--state", help="The last checkpoint witnessed, per log."
    ),
    submit: str | None = typer.Option(
        None,
        "--submit",
        help="For the deployment's operator: ask the standard "
        "witness at this URL (C2SP tlog-witness, its submission prefix) to cosign the "
        "petition's latest checkpoint, and keep its cosignature.",
    ),
    serve: str | None = typer.Option(
        None,
        "--serve",
        help="Serve the C2SP tlog-witness protocol (POST "
        "<prefix>/add-checkpoint) at HOST:PORT, for the logs given with --log.",
    ),
    logs: list[str] = typer.Option(
        [],
        "--log",
        help="With --serve: a log's verifier key (its origin+keyid+key, "
        "as its log API's log_key says), repeat for each log witnessed.",
    ),
) -> None:
    """For an independent party: cosign the latest checkpoint once it is consistent with the last one seen.
    Give the deployment your verifier key (printed here) for UNDERSIGNED_LOG_WITNESSES. With --submit, the
    deployment's side of the C2SP tlog-witness protocol instead (run where the deployment's settings are)."""
    from app.clients import log as client
    from app.clients.anonymous import ClientError, parse_petition_url
    from app.log import checkpoint as notes

    if submit is not None:
        from app.log import witness as witnessing

        settings = Settings()
        try:
            done = witnessing.request_cosignature(
                sessions=_sessions(settings),
                rt=_runtime(settings),
                petition_id=parse_petition_url(petition_url).petition_id,
                witness_url=submit,
            )
        except (ClientError, witnessing.WitnessError) as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Checkpoint {done.size} cosigned by {', '.join(done.witnesses)}.")
        return
    if not name:
        typer.echo("Give your witness name with --name.", err=True)
        raise typer.Exit(1)
    if serve is not None:
        from app.log import witness as witnessing

        try:
            host, _, port = serve.rpartition(":")
            if not port.isdigit():
                raise ValueError("give --serve as HOST:PORT, e.g. 127.0.0.1:8090")
            served = witnessing.Witness(
                name=name, key=client.witness_key(key_file, generate=generate), logs=logs, state_file=state_file
            )
            server = witnessing.serve(served, host or "127.0.0.1", int(port))
        except (ClientError, notes.CheckpointError, ValueError, OSError) as error:
            typer.echo(f"Cannot serve the witness: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Witness key: {notes.witness_verifier_key(name, served.key.public_key())}")
        typer.echo(f"Witnessing {len(logs)} log{'s' if len(logs) != 1 else ''} at http://{serve}/add-checkpoint")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.server_close()
        return
    if not petition_url:
        typer.echo("Give the petition's address.", err=True)
        raise typer.Exit(1)
    try:
        key = client.witness_key(key_file, generate=generate)
        typer.echo(f"Witness key: {notes.witness_verifier_key(name, key.public_key())}")
        typer.echo(client.witness(petition_url, name=name, key=key, state_file=state_file))
    except (ClientError, notes.CheckpointError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


keys_cli = typer.Typer(help="The keys that seal personal data at rest.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("generate")
def keys_generate(key_id: str = typer.Argument(..., help="Two characters a-z or 0-9, e.g. k2.")) -> None:
    """Print a new random key as id:base64, to put first in UNDERSIGNED_PII_KEYS."""
    from app.core import crypto

    try:
        console.print(crypto.generate_key(key_id), markup=False, highlight=False)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-seal every sealed value under the first key of UNDERSIGNED_PII_KEYS (safe to run again)."""
    from app.core import crypto
    from app.privacy import rotation

    settings = Settings()
    rt = _runtime(settings)
    try:
        result = rotation.rotate(sessions=_sessions(settings), rt=rt)
    except crypto.SealingError as error:
        console.print(f"[red]{error}. Keep every old key in UNDERSIGNED_PII_KEYS until rotation has run.[/red]")
        raise typer.Exit(1) from None
    for name, count in result.resealed.items():
        if count:
            console.print(f"{name}: {count:,} re-sealed")
    console.print(
        f"[green]Everything is sealed under key {result.key_id}: {result.total:,} values re-sealed, "
        f"{result.reindexed:,} look-up digests recomputed.[/green]"
    )

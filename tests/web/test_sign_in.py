"""Sessions kept on the server and failed sign-ins counted in the database, over a real uvicorn on loopback,
on SQLite and PostgreSQL: sign-out, disabling and a new password end sessions at once; failures per (account,
address) are delayed, then locked for a while; a lock from another address never locks a person's own PC."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from tests.conftest import ROOT, FixedClock
from tests.factories import run_wnb
from tests.server import answers, free_port, serving, wait_for
from wnb.api import create_app
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.settings import load_settings
from wnb.store import audit
from wnb.store.accounts import create_user, disable_user
from wnb.store.signin import Limits, refused_until
from wnb.store.tables import SignInFailureRow, WebSessionRow

STORES = ("sqlite", "postgres")
WNB = Path(sys.executable).parent / "wnb"
NURSE, PASSWORD = "nurse.jo", "correct horse battery staple"
ADMIN = "admin.kim"
NEW_PASSWORD = "a brand new passphrase"
SECRET = "test-session-secret-0123456789abcdef"
ELSEWHERE = {"X-Forwarded-For": "203.0.113.9"}  # uvicorn trusts it from loopback, as from a proxy in front
LOCK_AFTER = 5  # WNB_SIGNIN_LOCK_FAILURES for these tests; delays begin after 3
_failures = SignInFailureRow.__table__  # type: ignore[attr-defined]
_sessions = WebSessionRow.__table__  # type: ignore[attr-defined]


@dataclass
class Site:
    url: str
    db: Engine
    db_url: str
    clock: FixedClock

    @property
    def env(self) -> dict[str, str]:
        """What a `wnb` command at the command line needs to reach this site's database (tests.factories.run_wnb)."""
        return {"WNB_DATABASE_URL": self.db_url, "WNB_RULES_DIR": str(ROOT / "rules" / "default")}


def _app(service: Service) -> object:
    settings = load_settings(session_secret=SECRET, signin_lock_failures=LOCK_AFTER, signin_lock_minutes=15)
    return create_app(service, settings=settings)


@pytest.fixture
def site(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[Site]:
    db = open_database(db_url)
    create_user(db, NURSE, "safeguarding-nurse", PASSWORD)
    create_user(db, ADMIN, "admin", PASSWORD)  # the administrator who acts at the command line with --by
    with serving(_app(Service(db, ruleset, clock))) as url:
        yield Site(url, db, db_url, clock)
    db.dispose()


def token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the page has no CSRF field"
    return match[1]


def try_sign_in(client: httpx.Client, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    form = client.get("/web/sign-in", headers=headers)
    data = {"csrf": token(form), "name": NURSE, "password": password}
    return client.post("/web/sign-in", data=data, headers=headers)


@contextmanager
def browser(site: Site, signed_in: bool = True) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=20) as client:
        if signed_in:
            assert try_sign_in(client, PASSWORD).status_code == 303
        yield client


def replayed(site: Site, cookies: httpx.Cookies) -> httpx.Response:
    """The worklist opened with a copy of cookies kept from before."""
    with httpx.Client(base_url=site.url, timeout=20, cookies=httpx.Cookies(cookies)) as client:
        return client.get("/web/")


def goes_to_sign_in(answer: httpx.Response) -> bool:
    return answer.status_code == 303 and answer.headers["location"].startswith("/web/sign-in")


def sessions_of(site: Site, name: str) -> int:
    with site.db.connect() as connection:
        return len(connection.execute(select(_sessions).where(_sessions.c.user_name == name)).all())


def audit_records(site: Site, action: str) -> list[dict[str, object]]:
    with site.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == action).order_by(audit._audit.c.seq)
        return [dict(row._mapping) for row in connection.execute(query)]


def fail(site: Site, times: int, headers: dict[str, str] | None = None, wait: bool = True) -> list[int]:
    """`times` wrong passwords, each after the delay of the one before (unless not `wait`); their statuses."""
    statuses = []
    with browser(site, signed_in=False) as client:
        for _ in range(times):
            statuses.append(try_sign_in(client, "wrong password", headers).status_code)
            if wait:
                site.clock.now += timedelta(seconds=2 ** max(0, len(statuses) - 2))
    return statuses


# ---- sessions on the server ----


def test_signing_out_ends_the_session_so_the_old_cookie_replayed_gets_the_sign_in_page(site: Site) -> None:
    with browser(site) as client:
        kept = httpx.Cookies(client.cookies)
        assert replayed(site, kept).status_code == 200
        assert client.post("/web/sign-out", data={"csrf": token(client.get("/web/"))}).status_code == 303
    assert goes_to_sign_in(replayed(site, kept))
    assert sessions_of(site, NURSE) == 0


def test_disabling_an_account_ends_its_sessions_at_once(site: Site) -> None:
    with browser(site) as first, browser(site) as second:
        assert sessions_of(site, NURSE) == 2
        disable_user(site.db, NURSE, actor="admin.kim")
        assert sessions_of(site, NURSE) == 0
        assert goes_to_sign_in(first.get("/web/")) and goes_to_sign_in(second.get("/web/"))
    assert audit_records(site, "user_disabled")[-1]["payload"]["sessions_ended"] == "2"  # type: ignore[index]


def test_wnb_users_password_sets_a_new_password_and_ends_every_session(site: Site) -> None:
    with browser(site) as first, browser(site) as second:
        args = ("users", "password", NURSE, "--password-stdin", "--by", ADMIN)
        result = run_wnb(ROOT, *args, env=site.env, stdin=NEW_PASSWORD)
        assert result.returncode == 0, result.stderr
        assert "2 sessions signed out" in result.stdout
        assert goes_to_sign_in(first.get("/web/")) and goes_to_sign_in(second.get("/web/"))
    with browser(site, signed_in=False) as client:
        assert try_sign_in(client, PASSWORD).status_code == 401
        assert try_sign_in(client, NEW_PASSWORD).status_code == 303
    assert audit_records(site, "user_password_changed")[-1]["actor"] == f"user:{ADMIN}"


def test_wnb_users_password_refuses_a_short_password_naming_the_minimum(site: Site) -> None:
    result = run_wnb(ROOT, "users", "password", NURSE, "--password-stdin", env=site.env, stdin="short")
    assert result.returncode == 1
    assert "at least 12 characters" in result.stderr + result.stdout


def test_changing_ones_own_password_on_the_page_ends_the_other_sessions_and_keeps_this_one(site: Site) -> None:
    with browser(site) as mine, browser(site) as other:
        form = mine.get("/web/password")
        assert form.status_code == 200
        data = {"csrf": token(form), "current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
        answer = mine.post("/web/password", data=data)
        assert answer.status_code == 303, answer.text
        page = mine.get("/web/")
        assert page.status_code == 200 and "1 other session signed out" in page.text
        assert goes_to_sign_in(other.get("/web/"))
    assert sessions_of(site, NURSE) == 1
    assert audit_records(site, "user_password_changed")[-1]["actor"] == f"user:{NURSE}"
    with browser(site, signed_in=False) as client:
        assert try_sign_in(client, NEW_PASSWORD).status_code == 303


def test_the_password_page_refuses_a_wrong_current_password_and_changes_nothing(site: Site) -> None:
    with browser(site) as client:
        form = client.get("/web/password")
        data = {"csrf": token(form), "current": "not my password", "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
        answer = client.post("/web/password", data=data)
        assert answer.status_code == 400 and "current password was wrong" in answer.text
        assert client.get("/web/").status_code == 200  # still signed in
    with browser(site, signed_in=False) as client:
        assert try_sign_in(client, PASSWORD).status_code == 303


def test_the_password_page_needs_its_csrf_token(site: Site) -> None:
    with browser(site) as client:
        data = {"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
        assert client.post("/web/password", data=data).status_code == 403
    with browser(site, signed_in=False) as client:
        assert try_sign_in(client, PASSWORD).status_code == 303


def test_the_password_page_asks_for_sign_in_first(site: Site) -> None:
    with browser(site, signed_in=False) as client:
        assert goes_to_sign_in(client.get("/web/password"))


# ---- failed sign-ins ----


def test_the_delay_grows_after_three_failures_and_the_lock_comes_at_the_setting() -> None:
    limits, at = Limits(lock_failures=10, lock_minutes=15), datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    waits = [(refused_until(failures, at, limits) - at).total_seconds() for failures in range(1, 11)]
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 64, 900]


def test_failed_sign_ins_are_counted_in_the_database_per_account_and_address(site: Site) -> None:
    fail(site, 2)
    fail(site, 1, ELSEWHERE)
    with site.db.connect() as connection:
        rows = connection.execute(select(_failures.c.user_name, _failures.c.address, _failures.c.failures)).all()
    assert sorted(tuple(row) for row in rows) == [(NURSE, "127.0.0.1", 2), (NURSE, "203.0.113.9", 1)]


def test_after_three_failures_the_next_attempt_is_refused_for_a_growing_delay_without_checking(site: Site) -> None:
    with browser(site, signed_in=False) as client:
        assert [try_sign_in(client, "wrong password").status_code for _ in range(3)] == [401, 401, 401]
        refused = try_sign_in(client, PASSWORD)  # the right password, but too soon
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert "wait 1 second before trying again" in refused.text
        site.clock.now += timedelta(seconds=1)
        assert try_sign_in(client, "wrong password").status_code == 401
        assert try_sign_in(client, PASSWORD).headers["retry-after"] == "2"
        site.clock.now += timedelta(seconds=2)
        assert try_sign_in(client, PASSWORD).status_code == 303


def test_the_lock_comes_at_the_setting_and_opens_by_itself_after_its_minutes(site: Site) -> None:
    assert fail(site, LOCK_AFTER) == [401] * LOCK_AFTER
    with browser(site, signed_in=False) as client:
        locked = try_sign_in(client, PASSWORD)
        assert locked.status_code == 429 and "locked from this address" in locked.text
        assert int(locked.headers["retry-after"]) > 10 * 60
        site.clock.now += timedelta(minutes=15)
        assert try_sign_in(client, PASSWORD).status_code == 303


def test_someone_failing_from_another_address_does_not_lock_the_person_out_of_their_own_pc(site: Site) -> None:
    # Someone on another machine (here a proxy says so) locks the nurse's account from there...
    assert fail(site, LOCK_AFTER + 2, ELSEWHERE)[-1] == 429
    with browser(site, signed_in=False) as attacker:
        assert try_sign_in(attacker, PASSWORD, ELSEWHERE).status_code == 429
    # ...and the nurse, at the ward PC, signs in as ever.
    with browser(site, signed_in=False) as ward_pc:
        assert try_sign_in(ward_pc, PASSWORD).status_code == 303


def test_wnb_users_unlock_lifts_a_lock_early_and_is_audited(site: Site) -> None:
    fail(site, LOCK_AFTER)
    result = run_wnb(ROOT, "users", "unlock", NURSE, "--by", ADMIN, env=site.env)
    assert result.returncode == 0, result.stderr
    assert f"user {NURSE} unlocked" in result.stdout
    with browser(site, signed_in=False) as client:
        assert try_sign_in(client, PASSWORD).status_code == 303
    (record,) = audit_records(site, "sign_in_unlocked")
    assert record["actor"] == f"user:{ADMIN}" and record["payload"]["failures"] == LOCK_AFTER  # type: ignore[index]


def test_wnb_users_unlock_says_when_there_is_nothing_to_unlock(site: Site) -> None:
    nothing = run_wnb(ROOT, "users", "unlock", NURSE, env=site.env)
    unknown = run_wnb(ROOT, "users", "unlock", "nobody.here", env=site.env)
    assert nothing.returncode == 1 and "nothing to unlock" in nothing.stderr
    assert unknown.returncode == 1 and "no user named 'nobody.here'" in unknown.stderr


def test_a_lock_is_audited_once_with_its_count_not_once_per_failure(site: Site) -> None:
    fail(site, LOCK_AFTER + 3)  # three more attempts while locked: refused, and not recorded one by one
    (locked,) = audit_records(site, "sign_in_locked")
    payload = locked["payload"]
    assert payload["failures"] == LOCK_AFTER and payload["address"] == "127.0.0.1"  # type: ignore[index]
    assert locked["subject"] == [f"user:{NURSE}"] and locked["actor"] == "sign-in"
    assert audit_records(site, "sign_in_failed") == []


def test_failures_ended_by_the_right_password_are_one_record_with_their_count(site: Site) -> None:
    fail(site, 2)
    with browser(site) as _:
        pass
    (record,) = audit_records(site, "sign_in_failed")
    assert record["payload"]["failures"] == 2 and record["payload"]["ended_by"] == "right password"  # type: ignore[index]


def test_failures_left_alone_are_one_record_once_their_window_passes(site: Site) -> None:
    fail(site, 3, ELSEWHERE)
    site.clock.now += timedelta(minutes=16)
    fail(site, 1)  # any later attempt notices the old run and records it
    (record,) = audit_records(site, "sign_in_failed")
    assert record["payload"]["failures"] == 3 and record["payload"]["ended_by"] == "time"  # type: ignore[index]


def test_http_basic_failures_are_counted_with_the_pages_and_refused_with_429(site: Site) -> None:
    fail(site, 3, wait=False)  # on the pages
    with httpx.Client(base_url=site.url, timeout=20) as client:
        answer = client.get("/v1/tasks", auth=(NURSE, PASSWORD))
    assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    assert "too many failed sign-ins" in answer.json()["reason"]
    site.clock.now += timedelta(seconds=1)
    with httpx.Client(base_url=site.url, timeout=20) as client:
        assert client.get("/v1/tasks", auth=(NURSE, "wrong password")).status_code == 401
        assert client.get("/v1/tasks", auth=(NURSE, PASSWORD)).status_code == 429


def test_parallel_requests_with_the_right_password_never_delay_each_other(site: Site) -> None:
    def get(_: int) -> int:
        return httpx.get(f"{site.url}/v1/tasks", auth=(NURSE, PASSWORD), timeout=60).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(get, range(8))) == [200] * 8
    with site.db.connect() as connection:
        assert connection.execute(select(_failures)).all() == []  # a right password wrote nothing


def test_every_replica_sees_the_failures_counted_by_another(site: Site, ruleset: Ruleset) -> None:
    fail(site, 3, wait=False)
    other_db = open_database(site.db_url)
    try:
        other = _app(Service(other_db, ruleset, site.clock))
        with serving(other) as other_url, httpx.Client(base_url=other_url, timeout=20) as client:
            assert try_sign_in(client, PASSWORD).status_code == 429
    finally:
        other_db.dispose()


def test_wnb_serve_believes_x_forwarded_for_only_from_the_proxies_it_is_given(site: Site) -> None:
    port = free_port()
    # The suite's audit key kept: the server's first start registers the ruleset, an audited write.
    env = {key: value for key, value in os.environ.items() if not key.startswith("WNB_") or "AUDIT_KEY" in key}
    env.update(
        WNB_DATABASE_URL=site.db_url,
        WNB_RULES_DIR=str(ROOT / "rules" / "default"),
        WNB_FORWARDED_ALLOW_IPS="10.9.9.9",  # a proxy elsewhere: loopback is not one
        WNB_LOG_LEVEL="WARNING",
    )
    # A real process: this tests `wnb serve` running as a server, with the settings it reads once at its start.
    command = [str(WNB), "serve", "--port", str(port), "--sweep-minutes", "600"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{url}/health/live"), seconds=30)
        with httpx.Client(base_url=url, timeout=20) as client:
            assert try_sign_in(client, "wrong password", ELSEWHERE).status_code == 401
    finally:
        process.terminate()
        process.wait(20)
    with site.db.connect() as connection:
        addresses = connection.execute(select(_failures.c.address)).scalars().all()
    assert addresses == ["127.0.0.1"]  # the made-up address was not believed

"""The AWS journal's file and what it records (issue #19, item 1), without a sandbox."""

from __future__ import annotations

import stat

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from helpers.sandbox.aws import journal


def _request(method="POST", path="/", query=None, form=None, headers=None, scope="iam"):
    auth = f"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261129/us-east-1/{scope}/aws4_request, x"
    env = EnvironBuilder(
        method=method,
        path=path,
        query_string=query,
        data=form,
        headers={"Authorization": auth, **(headers or {})},
    ).get_environ()
    return Request(env)


def test_records_come_back_in_order_and_the_file_is_private(tmp_path):
    j = journal.Journal(tmp_path / "journal")
    recs = [{"kind": "bootstrap", "seed": 1}, {"kind": "mint", "tags": {"a": "ü"}}]
    for r in recs:
        j.append(r)
    assert journal.Journal(tmp_path / "journal").records() == recs
    assert stat.S_IMODE((tmp_path / "journal").stat().st_mode) == 0o600


def test_a_write_cut_short_by_a_crash_is_dropped_and_cut_off(tmp_path, caplog):
    j = journal.Journal(tmp_path / "journal")
    j.append({"n": 1})
    with open(tmp_path / "journal", "ab") as f:
        f.write(b'1234abcd {"n": 2')  # the crash came before the newline (and before the answer)
    again = journal.Journal(tmp_path / "journal")
    assert again.records() == [{"n": 1}]
    assert "cut short" in caplog.text
    again.append({"n": 3})  # starts on a line of its own
    assert journal.Journal(tmp_path / "journal").records() == [{"n": 1}, {"n": 3}]


@pytest.mark.parametrize(
    "damage",
    [
        lambda lines: [lines[0], lines[1].replace(b'"n":2', b'"n":7'), lines[2]],
        lambda lines: [lines[0], b"not a record", lines[2]],
        lambda lines: [lines[0], lines[1], lines[2][:-3] + b"xx}"],
    ],
    ids=["changed", "garbage", "last-line-complete-but-wrong"],
)
def test_a_damaged_line_stops_the_start_and_says_what_to_do(tmp_path, damage):
    j = journal.Journal(tmp_path / "journal")
    for n in (1, 2, 3):
        j.append({"n": n})
    lines = (tmp_path / "journal").read_bytes().split(b"\n")[:-1]
    (tmp_path / "journal").write_bytes(b"\n".join(damage(lines)) + b"\n")
    with pytest.raises(journal.JournalDamaged) as e:
        journal.Journal(tmp_path / "journal").records()
    msg = str(e.value)
    assert "damaged at line" in msg and "mv " in msg and "down --purge" in msg


@pytest.mark.parametrize(
    "req, change",
    [
        (_request(form={"Action": "CreateUser", "UserName": "a"}), True),
        (_request(form={"Action": "ListUsers"}), False),
        (_request(query={"Action": "GetUser"}), False),
        (_request(form={"Action": "GetSessionToken"}, scope="sts"), True),
        (_request(form={"Action": "AssumeRole"}, scope="sts"), True),
        (_request(form={"Action": "GetCallerIdentity"}, scope="sts"), False),
        (_request(form={"Action": "DescribeVpcs"}, scope="ec2"), False),
        (_request("PUT", "/bucket/key", scope="s3"), True),
        (_request("GET", "/bucket/key", scope="s3"), False),
        (_request("HEAD", "/bucket/key", scope="s3"), False),
        (_request("POST", "/bucket", query={"delete": ""}, scope="s3"), True),
        (_request("GET", "/clusters/myeks", scope="eks"), False),
        (_request("DELETE", "/clusters/myeks/addons/x", scope="eks"), True),
        (_request(headers={"X-Amz-Target": "Logs_20140328.PutLogEvents"}, scope="logs"), True),
        (_request(headers={"X-Amz-Target": "Logs_20140328.GetLogEvents"}, scope="logs"), False),
    ],
)
def test_what_counts_as_a_change(req, change):
    assert journal.is_change(req) is change


class FakeMoto:
    """A WSGI app in moto's place: notes each body it gets with what it drew from moto's random
    generator and clock, and refuses bodies that say "fail"."""

    def __init__(self):
        self.seen = []

    def __call__(self, environ, start_response):
        from moto.core import utils
        from moto.moto_api._internal import mock_random

        body = environ["wsgi.input"].read()
        self.seen.append((body, mock_random.get_random_string(20), utils.utcnow()))
        start_response("400 Bad Request" if b"fail" in body else "200 OK", [])
        return [b""]


def test_changes_replay_with_the_ids_and_dates_they_first_drew(tmp_path):
    from helpers.sandbox.aws import motopatches

    motopatches.randomness_and_clock_per_thread()
    live, boots = FakeMoto(), []
    durable = journal.Durable(live, journal.Journal(tmp_path / "journal"))
    durable.restore(lambda: boots.append("laid out"))
    for form in (
        {"Action": "CreateUser", "UserName": "a"},
        {"Action": "ListUsers"},
        {"Action": "CreateUser", "UserName": "fail"},
        {"Action": "CreateAccessKey", "UserName": "a"},
    ):
        durable.forward(_request(form=form))
    assert len(live.seen) == 4

    again = FakeMoto()
    report = journal.Durable(again, journal.Journal(tmp_path / "journal")).restore(
        lambda: boots.append("laid out")
    )
    # the read and the refused change are not kept; the two changes come back as they were
    assert boots == ["laid out", "laid out"]
    assert report == {"replayed": 2, "differed": []}
    assert again.seen == [live.seen[0], live.seen[3]]
    assert live.seen[0][1] != live.seen[3][1]  # each change its own draw


def test_a_journal_that_does_not_begin_with_the_account_is_damaged(tmp_path):
    j = journal.Journal(tmp_path / "journal")
    j.append({"kind": "mint", "seed": 1, "at": "2026-11-29T00:00:00"})
    with pytest.raises(journal.JournalDamaged):
        journal.Durable(FakeMoto(), j).restore(lambda: None)



def test_a_services_backend_draws_the_same_ids_whichever_request_makes_it():
    """EC2's backend is made by the first request that touches it, a read (no change's generator)
    or a change (live or replayed): its default VPC's id must not depend on which."""
    import datetime as dt

    from moto.ec2.models import ec2_backends
    from moto.moto_api._internal import mock_random

    from helpers.sandbox.aws import motopatches

    motopatches.randomness_and_clock_per_thread()

    def default_vpc(account: str, region: str) -> list[str]:
        return [v.id for v in ec2_backends[account][region].vpcs.values()]

    account, region = "000000000041", "eu-west-1"
    by_a_read = default_vpc(account, region)
    dict.__delitem__(ec2_backends[account], region)  # as the next process finds it: not made yet
    mock_random.get_random_hex(8)  # the shared generator has moved on meanwhile
    with motopatches.replayable(7, dt.datetime(2026, 11, 29)):
        by_a_change = default_vpc(account, region)
        after = mock_random.get_random_hex(8)
    assert by_a_change == by_a_read and by_a_read
    with motopatches.replayable(7, dt.datetime(2026, 11, 29)):
        # the backend made inside the change drew nothing from the change's generator
        assert mock_random.get_random_hex(8) == after


def test_a_bucket_is_dated_by_its_change_so_a_replay_keeps_its_creation_date():
    """moto dates an S3 bucket from the wall clock itself: replayed after a restart, a bucket would
    show the restart's time as its CreationDate."""
    import datetime as dt

    from moto.s3.models import s3_backends

    from helpers.sandbox.aws import motopatches

    motopatches.randomness_and_clock_per_thread()
    backend = s3_backends["000000000042"]["aws"]
    first = dt.datetime(2026, 11, 29, 8, 30, 15)
    with motopatches.replayable(7, first):
        bucket = backend.create_bucket("dated-by-its-change", "us-east-1")
    assert bucket.creation_date == first.replace(tzinfo=dt.timezone.utc)
    assert bucket.creation_date_ISO8601 == "2026-11-29T08:30:15.000Z"

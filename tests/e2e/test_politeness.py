"""Politeness and sessions through the deployed pipeline, all three engines, on the sample site.

- robots.txt: the site disallows /private/; a page there fails as a PermanentError naming the
  rule, unless its options opt out;
- sessions: /members/report needs a header whose value is in SSM Parameter Store and a cookie
  whose value is in Secrets Manager; the run carries only references, and the values appear in
  no S3 object, runs-table item or log event;
- the per-host limit (the default, 2): ten slow URLs of one host, then thirty from the three
  engines at once, never more than two requests in flight at the site.
"""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from typing import Any

import pytest

from baton import deploy, run
from baton.site_pages import MEMBER_COOKIE, MEMBER_COOKIE_VALUE, MEMBER_HEADER, MEMBER_TOKEN
from pipeline.models import FetchOptions, RunRequest, RunSummary, SecretRef, SsmRef
from pipeline.steps import ENGINES

STACK = "baton-polite"
HOST_LIMIT = 2  # template.yaml's ScraperHostConcurrency default
TOKEN_PARAMETER = f"/baton/e2e-{uuid.uuid4().hex[:6]}/site-token"
COOKIE_SECRET = f"baton/e2e-{uuid.uuid4().hex[:6]}/member"
MEMBER_OPTIONS = FetchOptions(headers={MEMBER_HEADER: SsmRef(ssm=TOKEN_PARAMETER)},
                              cookies={MEMBER_COOKIE: SecretRef(secret=COOKIE_SECRET)})

# path -> (options, succeeded, error_type, what the error says)
EXPECTED: dict[str, tuple[FetchOptions | None, bool, str | None, str | None]] = {
    "/pages/garden": (None, True, None, None),
    "/private/page": (None, False, "PermanentError", "RobotsDisallowed: "),
    "/private/page?opt-out=1": (FetchOptions(robots=False), True, None, None),
    "/members/report": (None, False, "PermanentError", "answered 401"),
    "/members/report?signed-in=1": (MEMBER_OPTIONS, True, None, None),
}


def site(site_url: str, action: str, method: str = "POST") -> Any:
    request = urllib.request.Request(f"{site_url}/_control/{action}", method=method)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def polite_stack(local_cloud, aws, sample_site_url: str) -> dict[str, str]:
    aws("ssm").put_parameter(Name=TOKEN_PARAMETER, Value=MEMBER_TOKEN, Type="SecureString")
    aws("secretsmanager").create_secret(Name=COOKIE_SECRET, SecretString=MEMBER_COOKIE_VALUE)
    return deploy.deploy("local", STACK,
                         {"ScraperAllowedHosts": sample_site_url.removeprefix("http://")},
                         say=lambda _: None).outputs


def url_of(site_url: str, path: str, engine: str) -> str:
    # Each engine gets its own URLs (a query parameter the site ignores): all pages are new.
    return f"{site_url}{path}{'&' if '?' in path else '?'}engine={engine}"


def run_pages(engine: str, site_url: str) -> RunSummary:
    urls = {url_of(site_url, path, engine): options
            for path, (options, *_) in EXPECTED.items()}
    request = RunRequest(run_id=f"polite-{engine}-{uuid.uuid4().hex[:6]}", urls=list(urls),
                         max_concurrency=len(urls),
                         options={url: options for url, options in urls.items() if options})
    summary = run.run(engine, "local", STACK, request, timeout_s=300)
    assert isinstance(summary, RunSummary)
    return summary


@pytest.fixture(scope="module")
def summaries(polite_stack, sample_site_url: str) -> dict[str, RunSummary]:
    return {engine: run_pages(engine, sample_site_url) for engine in ENGINES}


def path_of(url: str, engine: str) -> str:
    path = url.split("/", 3)[3]
    return "/" + path.replace(f"engine={engine}", "").rstrip("?&")


@pytest.mark.parametrize("engine", ENGINES)
def test_robots_txt_and_sessions_end_each_page_as_expected(summaries, engine) -> None:
    items = {path_of(item.url, engine): item for item in summaries[engine].items}

    assert set(items) == set(EXPECTED)
    for path, (_, succeeded, error_type, says) in EXPECTED.items():
        item = items[path]
        assert (item.succeeded, item.error_type, item.attempts) == (succeeded, error_type, 1), \
            (path, item)
        if says is not None:
            assert says in (item.error or ""), (path, item.error)
    assert "Disallow: /private/" in (items["/private/page"].error or "")


def test_secret_values_are_in_no_object_item_or_log(summaries, polite_stack, aws) -> None:
    secrets = (MEMBER_TOKEN.encode(), MEMBER_COOKIE_VALUE.encode())
    s3 = aws("s3")
    bucket = polite_stack["DataBucketName"]
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])]
    assert keys  # the runs stored pages (and their requests)
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert not any(secret in body for secret in secrets), key
    runs = aws("dynamodb").scan(TableName=polite_stack["RunsTableName"])["Items"]
    assert runs and not any(secret.decode() in json.dumps(runs) for secret in secrets)
    logs = aws("logs")
    groups = [group["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate()
              for group in page["logGroups"]]
    scraper_events = 0
    for group in groups:
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            for event in page.get("events", []):
                assert not any(secret.decode() in event["message"] for secret in secrets), group
                scraper_events += "Scraper" in group
    assert scraper_events  # the scrapers' logs were there to search


def polite_urls(site_url: str, tag: str, count: int, delay: float) -> list[str]:
    return [f"{site_url}/polite/slow?delay={delay:g}&n={number}&run={tag}"
            for number in range(count)]


@pytest.mark.parametrize("engine", ENGINES)
def test_ten_slow_urls_of_one_host_are_fetched_at_most_two_at_a_time(
        polite_stack, sample_site_url, engine) -> None:
    site(sample_site_url, "reset")
    urls = polite_urls(sample_site_url, engine, 10, delay=1)

    summary = run.run(engine, "local", STACK, run.run_request(urls, max_concurrency=10),
                      timeout_s=300)

    assert isinstance(summary, RunSummary) and summary.succeeded == 10, summary
    counts = site(sample_site_url, "state", "GET")["polite"]
    assert counts["requests"] == 10
    assert counts["max_in_flight"] == HOST_LIMIT, counts  # never more; and the limit is used


# Ten scrapers at once, all on one host: a scraper waiting for a slot holds a Lambda, and the
# local cloud caps the account's concurrency (30 on this machine; AWS: 1,000). The state machine
# and the choreography share the run tracker (reserved concurrency 8); the local cloud reports its
# throttling as Lambda.Unknown, which no Retry matches, so the two stay under it together.
AT_ONCE = {"orchestrator": 4, "stepfunctions": 3, "choreography": 3}


def test_the_limit_holds_across_the_three_engines_at_once(polite_stack, sample_site_url) -> None:
    site(sample_site_url, "reset")
    summaries: dict[str, RunSummary | BaseException] = {}

    def run_one(engine: str) -> None:
        urls = polite_urls(sample_site_url, f"all-{engine}", 10, delay=0.3)
        try:
            request = run.run_request(urls, max_concurrency=AT_ONCE[engine])
            summaries[engine] = run.run(engine, "local", STACK, request,  # type: ignore[assignment]
                                        timeout_s=300)
        except BaseException as error:  # reported by the assertion below
            summaries[engine] = error

    threads = [threading.Thread(target=run_one, args=(engine,)) for engine in ENGINES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for engine, summary in summaries.items():
        assert isinstance(summary, RunSummary) and summary.succeeded == 10, (engine, summary)
    counts = site(sample_site_url, "state", "GET")["polite"]
    assert counts["requests"] == 30 and counts["max_in_flight"] <= HOST_LIMIT, counts

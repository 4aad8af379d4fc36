"""The measures: each sets up what it needs in the bench database, runs the real path and returns its figures."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings

from goals.bench.figures import Figure, gzipped_size, linked_assets, percentile
from goals.bench.services import ROOT, Daphne, FakePushService, Workers, run_git, stop


@dataclass
class Run:
    """What every measure shares: the scratch directory, the size of the run, the services (started on demand)."""

    scratch: Path
    quick: bool
    env: dict
    say: Callable[[str], None] = print
    services: dict = field(default_factory=dict)
    stack: list = field(default_factory=list)

    def workers(self) -> Workers:
        if "workers" not in self.services:
            self.services["workers"] = self._start(Workers(self.env))
        return self.services["workers"]

    def daphne(self) -> Daphne:
        if "daphne" not in self.services:
            self.services["daphne"] = self._start(Daphne(self.env))
        return self.services["daphne"]

    def _start(self, service):
        service.__enter__()
        self.stack.append(service)
        return service

    def close(self) -> None:
        while self.stack:
            self.stack.pop().__exit__(None, None, None)

    def user(self, name: str):
        return get_user_model().objects.get_or_create(username=name)[0]

    def repo(self, name: str) -> Path:
        repo = self.scratch / name
        (repo / "pkg").mkdir(parents=True)
        (repo / "pkg" / "__init__.py").write_text("")
        run_git(repo, "init", "-q", "-b", "main")
        run_git(repo, "add", "-A")
        run_git(repo, "commit", "-q", "-m", "bench")
        return repo


WIDE = {"summary": "Seven files", "write": {f"wide/m{i}.py": "X = 1\n" for i in range(7)}}


def bench_repository(repo: Path | str, owner=None):
    """The bench's scratch repository, registered (directly: it is the server's own scratch space)."""
    from goals.models import Repository

    repository = Repository.objects.get_or_create(source=str(repo), defaults={"name": f"bench {repo}"[-100:]})[0]
    if owner is not None:
        repository.users.add(owner)
    return repository


def bench_profile():
    from goals.models import AgentProfile

    return AgentProfile.objects.get_or_create(name="Scripted (bench)", defaults={"adapter": "scripted"})[0]


def goal_fields(owner, repo: Path, title: str, **extra) -> dict:
    from goals.models import GoalStatus

    return {"owner": owner, "title": title, "objective": "Add modules under pkg/ and wide/",
            "repository": bench_repository(repo, owner), "agent_profile": bench_profile(),
            "constraints": ["Keep it small"], "status": GoalStatus.RUNNING, **extra}


def wait_until(condition: Callable[[], bool], timeout: float, pause: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(pause)
    return False


def short_goals(pks: list[int], steps: int) -> str:
    """Which goals have fewer steps than their script, and why they stopped (their last event)."""
    from django.db.models import Count

    from goals.models import Goal

    short = Goal.objects.filter(pk__in=pks).annotate(made=Count("steps")).filter(made__lt=steps)
    notes = []
    for goal in short[:3]:
        last = goal.events.first()
        notes.append(f"goal {goal.pk} {goal.status} after {goal.made}: {last.message if last else 'no event'}")
    return "; ".join(notes)[:300]


# --- goals on the worker ---------------------------------------------------------------------------------------


def goal_throughput(run: Run) -> list[Figure]:
    """goals_concurrent_steps_per_s: 50 goals on the scripted agent over 2 worker processes, none lost or doubled."""
    from goals.models import Goal, GoalStatus, Step
    from goals.tasks import enqueue_step

    goals_n, steps_n = (20, 3) if run.quick else (50, 6)
    owner, repo = run.user("bench"), run.repo("throughput")
    script = [{"summary": f"Add module {n}", "write": {f"pkg/mod{n}.py": f"VALUE = {n}\n"}} for n in range(steps_n)]
    script.append(WIDE)
    goals = [
        Goal.objects.create(**goal_fields(owner, repo, f"Bench goal {i}", agent_script=script,
                                          budget_steps=steps_n + 5))
        for i in range(goals_n)
    ]
    workers = run.workers()
    started = time.monotonic()
    with override_settings(CELERY_TASK_DEFAULT_QUEUE=workers.queue):
        for goal in goals:
            enqueue_step(goal.pk)
    pks = [g.pk for g in goals]
    wait_until(lambda: not Goal.objects.filter(pk__in=pks, status=GoalStatus.RUNNING).exists(),
               120 if run.quick else 600, pause=0.05)
    elapsed = time.monotonic() - started
    expected = goals_n * (steps_n + 1)
    done = Step.objects.filter(goal__in=goals).count()
    gitdirs = run.scratch / "gitdirs" / settings.GOALPOST_INSTANCE
    commits = sum(len(run_git(gitdirs / f"goal-{pk}.git", "rev-list", f"goalpost/{pk}", "^main").split())
                  for pk in pks if Step.objects.filter(goal_id=pk).exists())
    return [
        Figure("goals_concurrent_steps_per_s", done / elapsed, "steps/s", note=f"{goals_n} goals, 2 processes"),
        Figure("lost_steps", max(0, expected - done), "steps", "== 0", note=short_goals(pks, steps_n + 1)),
        Figure("duplicated_steps", max(0, commits - done), "steps", "== 0"),
    ]


def decision_resume(run: Run) -> list[Figure]:
    """decision_resume_p50_ms / _p99_ms: from the approve POST to the worker claiming the goal's next step.

    Each sample waits for the previous sample's step to end, so a worker slot is free: this is the latency of a
    decision, not the queueing behind steps of other goals (goals_concurrent_steps_per_s is the capacity).
    """
    from approvals.models import ApprovalRequest
    from goals import loop
    from goals.models import Goal

    samples_n = 15 if run.quick else 60
    owner, repo = run.user("bench"), run.repo("resume")
    goals = [Goal.objects.create(**goal_fields(owner, repo, f"Resume goal {i}",
                                               agent_script=[WIDE, {**WIDE, "summary": "Again"}]))
             for i in range(samples_n)]
    with override_settings(GOALPOST_WORKTREE_ROOT=run.scratch / "worktrees"):
        for goal in goals:
            loop.run_step(goal.pk, worker="bench")
    workers = run.workers()
    client = signed_in(owner)
    latencies = []
    with override_settings(CELERY_TASK_DEFAULT_QUEUE=workers.queue):
        for goal in goals:
            request = ApprovalRequest.objects.get(goal=goal, status="pending")
            before = time.time()
            client.post(f"/approvals/{request.pk}/decide", {"verdict": "approve"})
            lease = Goal.objects.filter(pk=goal.pk).values_list("lease_expires_at", flat=True)
            if wait_until(lambda lease=lease: lease.first() is not None, 10, pause=0.0005):
                claimed = lease.first() - timedelta(seconds=loop.lease_seconds())
                latencies.append((claimed.timestamp() - before) * 1000)
            # The next sample starts once this step has released its goal (it opens another request).
            wait_until(lambda lease=lease: lease.first() is None, 30, pause=0.01)
    return [
        Figure("decision_resume_p50_ms", percentile(latencies, 50), "ms", "<= 50"),
        Figure("decision_resume_p99_ms", percentile(latencies, 99), "ms", "<= 50",
               note=f"{len(latencies)} of {samples_n} resumed"),
    ]


# --- the live push over websockets -----------------------------------------------------------------------------


class Sockets:
    """N websocket clients of the real daphne, in processes of their own (goals/bench/sockets.py).

    Each client process notes when a marker reaches each of its sockets, on the machine-wide monotonic clock
    (`time.monotonic_ns()`), and a reader thread here collects the arrivals.
    """

    def __init__(self, url: str, cookies: list[str], processes: int = 2):
        self.url, self.cookies, self.processes_n = url, cookies, processes
        self.arrivals: dict[str, list[int]] = {}
        self.changed = threading.Condition()
        self.connected = 0
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Sockets:
        ws_url = self.url.replace("http://", "ws://") + "/ws/"
        for n in range(self.processes_n):
            process = subprocess.Popen(
                [sys.executable, "-m", "goals.bench.sockets", ws_url, self.url], cwd=ROOT, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
            )
            self.processes.append(process)
            cookies = self.cookies[n::self.processes_n]
            process.stdin.write("".join(f"{settings.SESSION_COOKIE_NAME}={c}\n" for c in cookies) + "\n")
            process.stdin.flush()
        for process in self.processes:
            ready = process.stdout.readline().split()
            if ready[:1] != ["ready"]:
                self.__exit__()
                raise RuntimeError("a websocket client process did not start")
            self.connected += int(ready[1])
            threading.Thread(target=self._read, args=(process,), name="bench-sockets", daemon=True).start()
        return self

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            marker, arrived = line.split()
            with self.changed:
                self.arrivals.setdefault(marker, []).append(int(arrived))
                self.changed.notify_all()

    def wait(self, marker: str, count: int, timeout: float) -> list[int]:
        """The marker's arrival times (monotonic ns) once `count` sockets have it, or those within the timeout."""
        with self.changed:  # a wait that sleeps, not a poll: the bench's own threads stay out of the path measured
            self.changed.wait_for(lambda: len(self.arrivals.get(marker, ())) >= count, timeout)
            return list(self.arrivals.get(marker, ()))

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            try:
                process.stdin.close()
                process.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                stop(process)


def signed_in(user) -> Client:
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def fetch(client: Client, url: str) -> bytes:
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return response.content


def session_cookie(user) -> str:
    return signed_in(user).cookies[settings.SESSION_COOKIE_NAME].value


def approval_push(run: Run) -> list[Figure]:
    """From a step hitting a gate to the card's HTML at each of 200 sockets, beside a bare group_send to them."""
    from channels.layers import get_channel_layer

    from approvals.broadcast import fragment, user_group
    from goals import gates, judge
    from goals.models import Goal

    clients_n, users_n, samples_n = 200, 10, (10 if run.quick else 40)
    owner, repo = run.user("bench"), run.repo("push")
    approvers = [run.user(f"approver-{i}") for i in range(users_n - 1)]
    users = [owner, *approvers]
    goals = []
    for i in range(samples_n + 1):  # the first is a warm-up (templates compiled, connections open), not counted
        goal = Goal.objects.create(**goal_fields(owner, repo, f"Push goal {i}"))
        goal.approvers.set(approvers)
        goals.append(goal)
    cookies = [session_cookie(users[i % users_n]) for i in range(clients_n)]
    daphne = run.daphne()
    layer = get_channel_layer()
    sender = asyncio.new_event_loop()  # the floor's bare group_send, from this process like the real push
    threading.Thread(target=sender.run_forever, name="bench-floor", daemon=True).start()
    push, floor, firsts = [], [], []
    with Sockets(daphne.url, cookies) as sockets:
        for i, goal in enumerate(goals):
            marker = f"bench-marker-push{i}"
            finding = gates.GateFinding(gate="scope", severity=gates.APPROVAL, reason=f"{marker} outside the scope")
            started = time.monotonic_ns()
            judge.open_request(goal, [finding], summary=f"{marker} 3 files")
            arrived = sockets.wait(marker, clients_n, 10)
            push += [(t - started) / 1e6 for t in arrived]
            first_push = (min(arrived, default=started) - started) / 1e6
            time.sleep(0.3)  # the goal's status line follows the card to every socket: let it pass first

            marker = f"bench-marker-floor{i}"
            event = fragment(f'<div id="bench" hx-swap-oob="true">{marker} </div>')

            async def send_all(event=event) -> int:
                sent = time.monotonic_ns()
                await asyncio.gather(*(layer.group_send(user_group(user.pk), dict(event)) for user in users))
                return sent

            sent = asyncio.run_coroutine_threadsafe(send_all(), sender).result(timeout=10)
            arrived = sockets.wait(marker, clients_n, 10)
            floor += [(t - sent) / 1e6 for t in arrived]
            firsts.append((first_push, (min(arrived, default=sent) - sent) / 1e6))
            if i == 0:  # the warm-up
                push, floor, firsts = [], [], []
        connected = sockets.connected
    sender.call_soon_threadsafe(sender.stop)
    push_p99, floor_p99 = percentile(push, 99), percentile(floor, 99)
    expected = clients_n * samples_n
    note = f"{connected} sockets, {users_n} people; {len(push)} of {expected} cards arrived"
    return [
        Figure("approval_push_p50_ms", percentile(push, 50), "ms", "<= 25", note=note),
        Figure("approval_push_p99_ms", push_p99 if len(push) == expected else float("nan"), "ms", "<= 25"),
        Figure("floor_push_p99_ms", floor_p99, "ms", note=f"{len(floor)} of {expected} arrived"),
        Figure("approval_push_first_p50_ms", percentile([p for p, _ in firsts], 50), "ms",
               note="to the first socket: the server path"),
        Figure("floor_push_first_p50_ms", percentile([f for _, f in firsts], 50), "ms", note="to the first socket"),
        Figure("push_vs_floor_ratio", push_p99 / floor_p99 if floor_p99 else float("nan"), "x", "<= 3"),
    ]


# --- pages -----------------------------------------------------------------------------------------------------


def page_weight(client: Client, html: bytes, *, gzip: bool) -> int:
    """The bytes of the page and the stylesheets and scripts it links (read by the static files finders)."""
    from django.contrib.staticfiles import finders

    size = gzipped_size(html) if gzip else len(html)
    for url in linked_assets(html.decode()):
        path = finders.find(url.removeprefix(settings.STATIC_URL).split("?")[0])
        if path:
            data = Path(path).read_bytes()
            size += gzipped_size(data) if gzip else len(data)
    return size


def inbox(run: Run) -> list[Figure]:
    """inbox_queries, inbox_p50_ms and inbox_first_load_kb with 10,000 goals and 1,000 pending requests."""
    from django.utils import timezone

    from approvals.models import ApprovalRequest, RequestKind, RequestOrigin
    from goals.models import Goal, GoalStatus, Step

    owner = run.user("inbox-owner")
    repository, profile = bench_repository("/nonexistent"), bench_profile()
    goals = Goal.objects.bulk_create(
        [Goal(owner=owner, title=f"Inbox goal {i}", objective="Keep the inbox fast", repository=repository,
              constraints=["Keep it small"], agent_profile=profile,
              status=GoalStatus.WAITING if i < 1000 else GoalStatus.DONE) for i in range(10_000)],
        batch_size=1000,
    )
    waiting = goals[:1000]
    Step.objects.bulk_create(
        [Step(goal=goal, number=1, status="waiting", started_at=timezone.now(), summary="Split the module",
              diff_stats={"files": 3, "added": 40, "removed": 12, "summary": "3 files, +40 −12"},
              evidence=[{"command": "pytest -q", "exit_code": 0, "summary": "12 passed"}]) for goal in waiting],
        batch_size=500,
    )
    finding = {"gate": "scope", "severity": "approval", "reason": "Touches 3 files outside the declared scope"}
    ApprovalRequest.objects.bulk_create(
        [ApprovalRequest(goal=goal, step_number=1, kind=RequestKind.STEP, origin=RequestOrigin.LOOP,
                         summary="Step 1: 3 files, +40 −12",
                         findings=[finding], expires_at=timezone.now() + timedelta(hours=4)) for goal in waiting],
        batch_size=500,
    )
    client = signed_in(owner)
    fetch(client, "/")  # warm: templates compiled, as on any server after its first request
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        html = fetch(client, "/")
    cards = html.count(b'class="request-card')
    times = []
    for _ in range(10 if run.quick else 30):
        started = time.perf_counter()
        fetch(client, "/")
        times.append((time.perf_counter() - started) * 1000)
    return [
        Figure("inbox_queries", len(queries), "queries", "<= 10", note=f"10,000 goals, 1,000 pending, {cards} cards"),
        Figure("inbox_p50_ms", percentile(times, 50), "ms", "<= 40"),
        Figure("inbox_first_load_kb", page_weight(client, html, gzip=True) / 1024, "KB", "<= 60",
               note="HTML + CSS + JS, gzip"),
    ]


def big_diff(files: int = 500, lines_per_file: int = 40) -> str:
    parts = []
    for f in range(files):
        path = f"src/module_{f:03}.py"
        body = "".join(f"+def function_{f}_{n}(value):  # line {n}\n" if n % 2 == 0 else f"+    return value * {n}\n"
                       for n in range(lines_per_file))
        parts.append(f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n"
                     f"+++ b/{path}\n@@ -0,0 +1,{lines_per_file} @@\n{body}")
    return "".join(parts)


def diff_page(run: Run) -> list[Figure]:
    """diff_first_screen_ms and diff_page_kb: the approval page of a 20,000-line diff over 500 files."""
    from django.utils import timezone

    from approvals.models import ApprovalRequest, RequestKind
    from goals.diffs import parse_diff
    from goals.models import Goal, GoalStatus, Step

    owner = run.user("diff-owner")
    goal = Goal.objects.create(**goal_fields(owner, run.scratch, "Big diff", status=GoalStatus.WAITING))
    diff = big_diff()
    parsed = parse_diff(diff)
    Step.objects.create(goal=goal, number=1, status="waiting", started_at=timezone.now(), summary="A big change",
                        diff=diff, files=parsed.compact(),
                        diff_stats={**parsed.stats.__dict__, "summary": parsed.summary_line()})
    request = ApprovalRequest.open(goal, RequestKind.STEP, summary="Step 1: 500 files", step_number=1)
    client = signed_in(owner)
    url = f"/approvals/{request.pk}/"
    fetch(client, url)  # warm
    times, html = [], b""
    for _ in range(5 if run.quick else 15):
        started = time.perf_counter()
        html = fetch(client, url)
        times.append((time.perf_counter() - started) * 1000)
    return [
        Figure("diff_first_screen_ms", percentile(times, 50), "ms", "<= 150", note="20,000 lines over 500 files"),
        Figure("diff_page_kb", page_weight(client, html, gzip=False) / 1024, "KB", "<= 300",
               note="HTML + CSS + JS, uncompressed"),
    ]


# --- push fan-out and the gateway ------------------------------------------------------------------------------


def push_fanout(run: Run) -> list[Figure]:
    """push_fanout_1000_s: one request pushed to 1,000 subscriptions on a local fake push service."""
    import base64
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from approvals import delivery
    from approvals.models import ApprovalRequest, PushSubscription, RequestKind
    from goals.models import Goal, GoalStatus

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    owner = run.user("push-owner")
    goal = Goal.objects.create(**goal_fields(owner, run.scratch, "Fan-out", status=GoalStatus.WAITING))
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    with FakePushService() as service:
        PushSubscription.objects.bulk_create(
            [PushSubscription(user=owner, endpoint=service.endpoint(f"device-{i}"), p256dh=b64url(point),
                              auth=b64url(os.urandom(16))) for i in range(1000)],
            batch_size=500,
        )
        with override_settings(CELERY_TASK_DEFAULT_QUEUE=f"goalpost-bench-nowhere-{os.getpid()}"):
            request = ApprovalRequest.open(goal, RequestKind.STEP, summary="Step 1: fan out")
        with override_settings(GOALPOST_PUSH_ALLOW_PRIVATE=True):  # the local fake: http on 127.0.0.1
            started = time.perf_counter()
            delivered = delivery.push_request(request.pk)
            elapsed = time.perf_counter() - started
        received = service.received
    return [Figure("push_fanout_1000_s", elapsed, "s", "<= 2", note=f"{delivered} delivered, {received} received")]


def gateway_waiters(run: Run) -> list[Figure]:
    """gateway_waiters: agents long-polling the decision endpoint of one daphne at once (1,000; 200 quick), every
    one answered once its request is decided; beside it what the waiting costs daphne, read with psutil while they
    all wait (its threads and resident memory, minus the same after one warm-up request)."""
    waiters_n = 200 if run.quick else 1000
    agents = waiting_agents(run, waiters_n, "gateway")
    threads_before, threads_during = agents["threads"]
    rss_before, rss_during = agents["rss"]
    return [
        Figure("gateway_waiters", len(agents["answered"]), "agents", f">= {waiters_n}",
               note=f"{waiters_n} waiting at once ({agents['connected']} connected when measured)"),
        Figure("gateway_waiter_threads_growth", threads_during - threads_before, "threads", "<= 10",
               note=f"daphne's threads: {threads_before} before, {threads_during} while they wait"),
        Figure("gateway_waiter_rss_growth_mb", (rss_during - rss_before) / 2**20, "MB", "<= 150",
               note=f"daphne's resident memory before: {rss_before / 2**20:.0f} MB"),
    ]


def decision_wake(run: Run) -> list[Figure]:
    """gateway_decision_p50_ms / _p99_ms: from a person's decide() to the answer at the agent that long-polls it,
    with 500 agents waiting on one daphne (quick too: the target is for 500), decided one after the other."""
    waiters_n = 500
    agents = waiting_agents(run, waiters_n, "wake")
    answered, decided = agents["answered"], agents["decided"]
    delays = [(answered[pk] - decided[pk]) * 1000 for pk in answered]
    decide_ms = percentile(agents["decide_ms"], 50)
    return [
        Figure("gateway_decision_p50_ms", percentile(delays, 50), "ms", "<= 100",
               note=f"{len(answered)} of {waiters_n} answered; decide() itself takes {decide_ms:.1f} ms (p50)"),
        Figure("gateway_decision_p99_ms", percentile(delays, 99) if len(answered) == waiters_n else float("nan"),
               "ms", "<= 100", note=f"{waiters_n} agents waiting at once"),
    ]


def waiting_agents(run: Run, waiters_n: int, label: str) -> dict:
    """`waiters_n` agents long-polling `…/decision?wait=25` on the bench's daphne (each calling again while the
    answer is `pending`), then every request decided in one loop: when each was decided and answered, daphne's
    threads and memory before and while they wait."""
    import psutil

    from approvals.models import ApprovalRequest, RequestKind, RequestOrigin
    from gateway.models import AgentToken
    from goals.models import Goal, GoalStatus

    owner = run.user(f"{label}-owner")
    waits = []
    for i in range(waiters_n + 1):  # the last one is the warm-up's
        goal = Goal.objects.create(**goal_fields(owner, run.scratch, f"{label} goal {i}", status=GoalStatus.WAITING))
        _, secret = AgentToken.issue(goal, owner)
        request = ApprovalRequest.open(goal, RequestKind.STEP, summary=f"Tool call {i}",
                                       origin=RequestOrigin.GATEWAY)
        waits.append((request, secret))
    warm_up = waits.pop()
    daphne = run.daphne()
    server = psutil.Process(daphne.process.pid)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="bench-waiters", daemon=True).start()
    answered: dict[int, float] = {}

    async def wait_all() -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            async def wait_one(request, secret, wait=25) -> None:
                # As an agent does: call again while the answer is "pending", until the run's deadline.
                url = f"{daphne.url}/api/v1/requests/{request.pk}/decision?wait={wait}"
                while time.perf_counter() < deadline:
                    async with session.get(url, headers={"Authorization": f"Bearer {secret}"}) as response:
                        body = await response.json()
                    if response.status != 200:
                        return
                    if body.get("status") != "pending":
                        answered[request.pk] = time.perf_counter()
                        return

            deadline = time.perf_counter() + 5
            await wait_one(*warm_up, wait=0)
            await ready.wait()
            deadline = time.perf_counter() + 150
            await asyncio.gather(*(wait_one(r, s) for r, s in waits), return_exceptions=True)

    ready = asyncio.Event()
    done = asyncio.run_coroutine_threadsafe(wait_all(), loop)
    time.sleep(1)  # the warm-up request: the first request's imports and the settled listener are not the waiters'
    threads_before, rss_before = server.num_threads(), server.memory_info().rss
    loop.call_soon_threadsafe(ready.set)
    waiting = wait_for_waiters(server, waiters_n)
    threads_during, rss_during = server.num_threads(), server.memory_info().rss
    decided: dict[int, float] = {}
    decide_ms = []
    for request, _ in waits:
        decided[request.pk] = time.perf_counter()
        request.decide(owner, "approve")
        decide_ms.append((time.perf_counter() - decided[request.pk]) * 1000)
    done.result(timeout=200)
    loop.call_soon_threadsafe(loop.stop)
    return {"answered": answered, "decided": decided, "decide_ms": decide_ms, "connected": waiting,
            "threads": (threads_before, threads_during), "rss": (rss_before, rss_during)}


def wait_for_waiters(server, count: int, timeout: float = 90.0) -> int:
    """Until `count` clients are connected to the server and it has gone quiet (every request has reached its
    wait); the connections counted."""
    deadline = time.monotonic() + timeout
    connected = 0
    while time.monotonic() < deadline:
        connected = sum(1 for conn in server.net_connections(kind="tcp") if conn.status == "ESTABLISHED")
        if connected >= count and server.cpu_percent(interval=0.5) < 10:
            break
        time.sleep(0.2)
    return connected


def worker_memory(run: Run) -> list[Figure]:
    """worker_peak_rss_*_mb: the worker's own peak memory (not the agent's, nor git's) over one step whose agent
    writes a 1 GB file, and over one whose diff is 50 MB, beside a one-line step for the baseline. Each step runs
    in a process of its own, which reports its own peak RSS (`own_peak_rss_kb`). No target: they show that the worker's
    memory stays bounded whatever the step does."""
    from goals.models import AgentProfile, Goal

    owner, repo = run.user("bench"), run.repo("memory")
    cases = {
        "small_step": "echo small > small.txt",  # the baseline: Django, the loop and the sandbox loaded
        "1gb_file": "head -c 1073741824 /dev/urandom > big.bin",
        "50mb_diff": "python3 -c \"open('big.txt', 'w').write(('x' * 99 + '\\n') * 500_000)\"",
    }
    report = "from goals.bench.figures import own_peak_rss_kb; print(own_peak_rss_kb())"
    env = {**run.env, "DJANGO_SETTINGS_MODULE": "config.settings", "GOALPOST_SANDBOX_FILE_SIZE_MB": "2048",
           "GOALPOST_SANDBOX_DISK_MB": "4096", "GOALPOST_SANDBOX_CPU_SECONDS": "600"}
    figures = []
    for name, script in cases.items():
        profile = AgentProfile.objects.create(
            name=f"Bench memory {name}", adapter="command", preset="custom",
            options={"command": ["bash", "-c", script, "agent", "{prompt}"], "timeout_s": 600},
        )
        goal = Goal.objects.create(**goal_fields(owner, repo, f"Memory {name}", agent_profile=profile))
        step_it = f"from goals import loop; loop.run_step({goal.pk}, worker='bench')"
        code = f"import django; django.setup(); {step_it}; {report}"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=1200, check=False)
        lines = done.stdout.split()
        peak_mb = int(lines[-1]) / 1024 if done.returncode == 0 and lines else float("nan")
        step = goal.steps.first()
        note = f"step {step.status} {step.error[:80]}".strip() if step else done.stderr[-200:]
        figures.append(Figure(f"worker_peak_rss_{name}_mb", peak_mb, "MB", note=note))
    return figures


MEASURES: dict[str, Callable[[Run], list[Figure]]] = {
    "throughput": goal_throughput,
    "resume": decision_resume,
    "push": approval_push,
    "inbox": inbox,
    "diff": diff_page,
    "fanout": push_fanout,
    "gateway": gateway_waiters,
    "wake": decision_wake,
    "memory": worker_memory,
}
